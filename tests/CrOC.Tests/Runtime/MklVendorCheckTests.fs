module CrOC.Tests.MklVendorCheckTests

open System
open System.IO
open System.Runtime.InteropServices
open Expecto
open CrOC.Host.Runtime

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type Answer = delegate of unit -> int

module private Native =
    [<DllImport("libc.so.6")>]
    extern nativeint dlopen(string file, int mode)
    [<DllImport("libc.so.6")>]
    extern nativeint dlsym(nativeint handle, string name)
    [<DllImport("libc.so.6")>]
    extern int dlclose(nativeint handle)

let private stackPermissions () =
    File.ReadAllLines "/proc/self/maps" |> Array.find (fun line -> line.EndsWith "[stack]") |> fun line -> line.Split(' ').[1]

let tests =
    testList "MKL vendor check" [
        test "the generated shared object loads, exports exactly its one function, which answers 1, and leaves the stack non-executable" {
            let path = TestUtil.scratchPath "answer-test" ".so"
            File.WriteAllBytes(path, AnswerLibrary.Bytes())
            try
                let handle = Native.dlopen(path, 2) // RTLD_NOW, local scope: nothing else binds to it here
                Expect.notEqual handle 0n "dlopen accepts it"
                let symbol = Native.dlsym(handle, "mkl_serv_intel_cpu_true")
                Expect.notEqual symbol 0n "the symbol is exported"
                Expect.equal ((Marshal.GetDelegateForFunctionPointer<Answer> symbol).Invoke()) 1 "it returns 1"
                Expect.equal (Native.dlsym(handle, "mkl_serv_intel_cpu")) 0n "no other symbol"
                Expect.isFalse ((stackPermissions ()).Contains 'x') "PT_GNU_STACK: the stack stays non-executable"
                Native.dlclose handle |> ignore
            finally
                File.Delete path
        }

        test "MKL is answered only on non-Intel x86-64 Linux, and never with CROC_MKL_VENDOR_CHECK=keep" {
            Expect.isTrue (MklVendorCheck.Wanted(null, "AuthenticAMD", true)) "AMD, Linux x86-64"
            Expect.isTrue (MklVendorCheck.Wanted("", "HygonGenuine", true)) "another vendor"
            Expect.isFalse (MklVendorCheck.Wanted(null, "GenuineIntel", true)) "Intel: MKL's own choice is right"
            Expect.isFalse (MklVendorCheck.Wanted(" Keep ", "AuthenticAMD", true)) "kept on request"
            Expect.isFalse (MklVendorCheck.Wanted(null, "AuthenticAMD", false)) "not Linux x86-64"
            Expect.isFalse (MklVendorCheck.Wanted(null, null, true)) "no CPUID"
            match MklVendorCheck.CpuVendor() with
            | null -> ()
            | vendor -> Expect.equal vendor.Length 12 "CPUID leaf 0 gives 12 characters"
        }
    ]
