using System.Buffers.Binary;

namespace CrOC.Host.Weights;

/// <summary>
/// A pass over a pickle's opcodes (protocols 0–5) before it is unpickled, executing nothing: the
/// unpickler's cost grows with the values it pushes and, for integers written in decimal, with the
/// square of their digits, both of which a small deflated pickle can make huge (12 M references to
/// one list cost 750 MB of allocations before the tree's size was refused, and 60 M, deflated to
/// 524 KB, 33 GB; a text integer of 32 M digits took 92 s to parse). Refuses a pickle that makes more than a limit of values, marks
/// and memo entries (values counted each time they are pushed, keys and call arguments too), holds
/// an integer wider than <see cref="MaxIntegerBytes"/> bytes (or <see cref="MaxIntegerDigits"/>
/// characters in decimal) or an opcode no protocol defines; an argument that runs past the end is an
/// <see cref="EndOfStreamException"/>.
/// </summary>
static class PickleScan
{
    /// <summary>256 bits: torch writes sizes, offsets and strides of 64 bits.</summary>
    public const int MaxIntegerBytes = 32;
    /// <summary>A 256-bit integer in decimal with its sign and protocol 0's `L` suffix.</summary>
    public const int MaxIntegerDigits = 80;

    /// <summary>How an opcode's argument is laid out in the bytes that follow it.</summary>
    enum Argument { None, Fixed, Line, TwoLines, Counted }

    /// <summary>The argument's layout, its size (the bytes of a fixed argument, or of a counted
    /// argument's little-endian length), and whether the opcode grows the unpickler's state: pushes a
    /// value or a mark onto its stack, or writes its memo.</summary>
    static (Argument Layout, int Size, bool Grows) Opcode(byte code) => (char)code switch
    {
        // pops, in-place updates, stop, protocol and frame headers
        '.' or '0' or '1' or 'a' or 'e' or 'b' or 's' or 'u' or '\x90' or '\x98' => (Argument.None, 0, false),
        '\x80' => (Argument.Fixed, 1, false),
        '\x95' => (Argument.Fixed, 8, false),
        // marks and memo writes
        '(' or '\x94' => (Argument.None, 0, true),
        'p' => (Argument.Line, 0, true),
        'q' => (Argument.Fixed, 1, true),
        'r' => (Argument.Fixed, 4, true),
        // values made or referenced
        'N' or '\x88' or '\x89' or '2' or ']' or 'l' or '}' or 'd' or ')' or 't' or '\x85' or '\x86' or '\x87'
            or '\x8f' or '\x91' or 'R' or '\x81' or '\x92' or 'o' or '\x93' or 'Q' or '\x97' => (Argument.None, 0, true),
        'K' or 'h' or '\x82' => (Argument.Fixed, 1, true),
        'M' or '\x83' => (Argument.Fixed, 2, true),
        'J' or 'j' or '\x84' => (Argument.Fixed, 4, true),
        'G' => (Argument.Fixed, 8, true),
        'F' or 'I' or 'L' or 'S' or 'V' or 'g' or 'P' => (Argument.Line, 0, true),
        'c' or 'i' => (Argument.TwoLines, 0, true),
        'U' or 'C' or '\x8c' or '\x8a' => (Argument.Counted, 1, true),
        'T' or 'X' or 'B' or '\x8b' => (Argument.Counted, 4, true),
        '\x8d' or '\x8e' or '\x96' => (Argument.Counted, 8, true),
        _ => throw new WeightsException($"the pickle holds an opcode no pickle protocol defines (0x{code:x2})"),
    };

    /// <summary>Checks the opcodes up to STOP; at most <paramref name="maxEntries"/> values, marks and memo entries may be made.</summary>
    public static void Check(ReadOnlySpan<byte> pickle, long maxEntries)
    {
        long entries = 0;
        int at = 0;
        while (true)
        {
            if (at >= pickle.Length) throw new EndOfStreamException();
            byte code = pickle[at++];
            if (code == '.') return;
            var (layout, size, grows) = Opcode(code);
            if (grows && ++entries > maxEntries) throw new WeightsException($"the pickle makes more than {maxEntries} values, marks and memo entries");
            int length = layout switch
            {
                Argument.None => 0,
                Argument.Fixed => size,
                Argument.Line => LineLength(pickle[at..]),
                Argument.TwoLines => TwoLinesLength(pickle[at..]),
                _ => size + CountedLength(pickle[at..], size),
            };
            if (length > pickle.Length - at) throw new EndOfStreamException();
            var argument = pickle.Slice(at, length);
            CheckInteger(code, layout == Argument.Counted ? argument[size..] : argument);
            at += length;
        }
    }

    /// <summary>The bytes up to and including the next newline.</summary>
    static int LineLength(ReadOnlySpan<byte> rest) =>
        rest.IndexOf((byte)'\n') is var end and >= 0 ? end + 1 : throw new EndOfStreamException();

    /// <summary>The bytes of two lines (GLOBAL's and INST's module and name).</summary>
    static int TwoLinesLength(ReadOnlySpan<byte> rest)
    {
        int first = LineLength(rest);
        return first + LineLength(rest[first..]);
    }

    /// <summary>The length a counted argument's little-endian count of <paramref name="size"/> bytes gives, checked against the bytes left.</summary>
    static int CountedLength(ReadOnlySpan<byte> rest, int size)
    {
        if (rest.Length < size) throw new EndOfStreamException();
        ulong count = size switch
        {
            1 => rest[0],
            4 => BinaryPrimitives.ReadUInt32LittleEndian(rest),
            _ => BinaryPrimitives.ReadUInt64LittleEndian(rest),
        };
        return count <= (ulong)(rest.Length - size) ? (int)count : throw new EndOfStreamException();
    }

    /// <summary>Integers: INT and LONG in decimal (<paramref name="value"/>: a line), LONG1 and LONG4 in bytes (after their count).</summary>
    static void CheckInteger(byte code, ReadOnlySpan<byte> value)
    {
        if (code is (byte)'I' or (byte)'L' && value.Length > MaxIntegerDigits + 1)
            throw new WeightsException($"the pickle holds an integer of {value.Length - 1} characters, more than {MaxIntegerDigits} (a weights file's integers fit in 64 bits)");
        if (code is 0x8a or 0x8b && value.Length > MaxIntegerBytes)
            throw new WeightsException($"the pickle holds an integer of {value.Length} bytes, more than {MaxIntegerBytes} (a weights file's integers fit in 64 bits)");
    }
}
