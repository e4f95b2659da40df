namespace CrOC.Host.Runtime;

/// <summary>
/// The bytes of a minimal ELF64 x86-64 shared object exporting one function,
/// <c>int mkl_serv_intel_cpu_true(void) { return 1; }</c> (see <see cref="MklVendorCheck"/>):
/// an ELF header, four program headers (text R-X, dynamic RW-, PT_DYNAMIC, a non-executable stack),
/// a one-bucket SysV hash, two symbols, their names, six code bytes and the dynamic table.
/// No section headers: the dynamic loader does not read them.
/// </summary>
public static class AnswerLibrary
{
    const string Name = "mkl_serv_intel_cpu_true";
    const int Page = 0x1000;
    const int HashAt = 0x120, SymbolsAt = 0x138, NamesAt = 0x168, CodeAt = 0x190, DynamicAt = Page;
    static readonly byte[] Code = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3]; // mov eax, 1; ret

    public static byte[] Bytes()
    {
        var names = System.Text.Encoding.ASCII.GetBytes("\0" + Name + "\0");
        var image = new byte[DynamicAt + 6 * 16];
        var w = new BinaryWriter(new MemoryStream(image));
        // ELF header: 64-bit, little-endian, version 1, ET_DYN, x86-64, program headers at 64
        w.Write([0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        w.Write((ushort)3); w.Write((ushort)62); w.Write(1u);
        w.Write(0UL); w.Write(64UL); w.Write(0UL); w.Write(0u);
        w.Write((ushort)64); w.Write((ushort)56); w.Write((ushort)4); w.Write((ushort)64); w.Write((ushort)0); w.Write((ushort)0);
        void Segment(uint type, uint flags, ulong at, ulong size, ulong align)
        {
            w.Write(type); w.Write(flags); w.Write(at); w.Write(at); w.Write(at); w.Write(size); w.Write(size); w.Write(align);
        }
        const uint read = 4, write = 2, execute = 1;
        Segment(1, read | execute, 0, (ulong)(CodeAt + Code.Length), Page);       // PT_LOAD: headers, hash, symbols, code
        Segment(1, read | write, DynamicAt, 6 * 16, Page);                        // PT_LOAD: the dynamic table (the loader adjusts it)
        Segment(2, read | write, DynamicAt, 6 * 16, 8);                           // PT_DYNAMIC
        Segment(0x6474E551, read | write, 0, 0, 16);                              // PT_GNU_STACK: no executable stack
        // SysV hash: one bucket holding symbol 1, chains ending at 0
        w.Seek(HashAt, SeekOrigin.Begin);
        w.Write(1u); w.Write(2u); w.Write(1u); w.Write(0u); w.Write(0u);
        // symbols: the null one, then the function (global, STT_FUNC, a defined section index)
        w.Seek(SymbolsAt + 24, SeekOrigin.Begin);
        w.Write(1u); w.Write((byte)0x12); w.Write((byte)0); w.Write((ushort)1); w.Write((ulong)CodeAt); w.Write((ulong)Code.Length);
        w.Seek(NamesAt, SeekOrigin.Begin); w.Write(names);
        w.Seek(CodeAt, SeekOrigin.Begin); w.Write(Code);
        // dynamic table: DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT, DT_NULL
        w.Seek(DynamicAt, SeekOrigin.Begin);
        foreach (var (tag, value) in new (ulong, ulong)[] { (4, HashAt), (5, NamesAt), (6, SymbolsAt), (10, (ulong)names.Length), (11, 24), (0, 0) })
        {
            w.Write(tag); w.Write(value);
        }
        return image;
    }
}
