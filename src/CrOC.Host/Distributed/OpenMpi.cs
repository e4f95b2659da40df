using System.Runtime.InteropServices;

namespace CrOC.Host.Distributed;

/// <summary>
/// The few functions and handles of Open MPI's C library (libmpi.so.40, Debian's `openmpi-bin` /
/// `libopenmpi-dev`) that the collectives need, resolved at run time: a single-process run never
/// loads it. In Open MPI the handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are the addresses of
/// exported objects (`ompi_mpi_comm_world`, …), and MPI_IN_PLACE is (void*)1.
/// </summary>
sealed class OpenMpi
{
    public const string Library = "libmpi.so.40";
    static readonly IntPtr InPlace = 1;
    const int Success = 0;
    const int RtldNow = 2, RtldGlobal = 0x100;
    const int CommTypeShared = 0; // MPI_COMM_TYPE_SHARED: the processes of one machine

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int InitFn(IntPtr argc, IntPtr argv);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int FlagFn(out int flag);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int VoidFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int CommIntFn(IntPtr comm, out int value);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int CommFn(IntPtr comm);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int IbarrierFn(IntPtr comm, out IntPtr request);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int TestFn(ref IntPtr request, out int flag, IntPtr status);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int AbortFn(IntPtr comm, int code);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int AllreduceFn(IntPtr send, IntPtr receive, int count, IntPtr type, IntPtr op, IntPtr comm);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int BcastFn(IntPtr buffer, int count, IntPtr type, int root, IntPtr comm);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int AllgatherFn(IntPtr send, int sendCount, IntPtr sendType, IntPtr receive, int receiveCount, IntPtr receiveType, IntPtr comm);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int SplitTypeFn(IntPtr comm, int splitType, int key, IntPtr info, out IntPtr newComm);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int CommFreeFn(ref IntPtr comm);

    // libdl.so.2: dlopen lives there before glibc 2.34 and is still exported from it after.
    [DllImport("libdl.so.2", EntryPoint = "dlopen")] static extern IntPtr DlOpen(string file, int mode);
    [DllImport("libdl.so.2", EntryPoint = "dlerror")] static extern IntPtr DlError();

    readonly InitFn init;
    readonly FlagFn initialized, finalized;
    readonly VoidFn finalize;
    readonly CommIntFn commRank, commSize;
    readonly CommFn barrier;
    readonly IbarrierFn ibarrier;
    readonly TestFn test;
    readonly AbortFn abort;
    readonly AllreduceFn allreduce;
    readonly BcastFn bcast;
    readonly AllgatherFn allgather;
    readonly SplitTypeFn splitType;
    readonly CommFreeFn commFree;
    readonly IntPtr infoNull;

    public IntPtr World { get; }
    public IntPtr Float { get; }
    public IntPtr Double { get; }
    public IntPtr Sum { get; }

    OpenMpi(IntPtr lib)
    {
        T Fn<T>(string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(lib, name));
        init = Fn<InitFn>("MPI_Init");
        initialized = Fn<FlagFn>("MPI_Initialized");
        finalized = Fn<FlagFn>("MPI_Finalized");
        finalize = Fn<VoidFn>("MPI_Finalize");
        commRank = Fn<CommIntFn>("MPI_Comm_rank");
        commSize = Fn<CommIntFn>("MPI_Comm_size");
        barrier = Fn<CommFn>("MPI_Barrier");
        ibarrier = Fn<IbarrierFn>("MPI_Ibarrier");
        test = Fn<TestFn>("MPI_Test");
        abort = Fn<AbortFn>("MPI_Abort");
        allreduce = Fn<AllreduceFn>("MPI_Allreduce");
        bcast = Fn<BcastFn>("MPI_Bcast");
        allgather = Fn<AllgatherFn>("MPI_Allgather");
        splitType = Fn<SplitTypeFn>("MPI_Comm_split_type");
        commFree = Fn<CommFreeFn>("MPI_Comm_free");
        infoNull = NativeLibrary.GetExport(lib, "ompi_mpi_info_null");
        World = NativeLibrary.GetExport(lib, "ompi_mpi_comm_world");
        Float = NativeLibrary.GetExport(lib, "ompi_mpi_float");
        Double = NativeLibrary.GetExport(lib, "ompi_mpi_double");
        Sum = NativeLibrary.GetExport(lib, "ompi_mpi_op_sum");
    }

    /// <summary>Loads Open MPI globally (its plugins resolve symbols of libmpi) and binds it.</summary>
    public static OpenMpi Load()
    {
        IntPtr lib;
        try
        {
            lib = DlOpen(Library, RtldNow | RtldGlobal);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new DistributedException($"cannot load {Library}: the C library's dlopen is unavailable ({e.Message})");
        }
        if (lib == IntPtr.Zero)
            throw new DistributedException($"this process was started by an MPI launcher, but {Library} could not be loaded ({Marshal.PtrToStringAnsi(DlError())}); install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev)");
        try
        {
            return new OpenMpi(lib);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new DistributedException($"{Library} is not Open MPI's C library ({e.Message}); CrOC.NET binds Open MPI 4.x or newer");
        }
    }

    static void Check(int code, string what)
    {
        if (code != Success) throw new DistributedException($"{what} failed with MPI error {code}");
    }

    public void Init()
    {
        Check(initialized(out int done), "MPI_Initialized");
        if (done == 0) Check(init(IntPtr.Zero, IntPtr.Zero), "MPI_Init");
    }

    public void FinalizeMpi()
    {
        Check(finalized(out int done), "MPI_Finalized");
        if (done == 0) Check(finalize(), "MPI_Finalize");
    }

    public int Rank() { Check(commRank(World, out int r), "MPI_Comm_rank"); return r; }

    /// <summary>This process's rank among the processes of its machine, and their number
    /// (whatever the launcher: mpirun, srun, …). Collective over all processes.</summary>
    public (int Rank, int Size) OnThisMachine()
    {
        Check(splitType(World, CommTypeShared, 0, infoNull, out var local), "MPI_Comm_split_type");
        try
        {
            Check(commRank(local, out int rank), "MPI_Comm_rank");
            Check(commSize(local, out int size), "MPI_Comm_size");
            return (rank, size);
        }
        finally
        {
            commFree(ref local);
        }
    }
    public int Size() { Check(commSize(World, out int s), "MPI_Comm_size"); return s; }
    public void Barrier() => Check(barrier(World), "MPI_Barrier");

    /// <summary>A barrier that does not spin: MPI_Ibarrier, then MPI_Test every
    /// <paramref name="poll"/> (MPI_STATUS_IGNORE is NULL in Open MPI).</summary>
    public void SleepingBarrier(TimeSpan poll)
    {
        Check(ibarrier(World, out var request), "MPI_Ibarrier");
        while (true)
        {
            Check(test(ref request, out int done, IntPtr.Zero), "MPI_Test");
            if (done != 0) return;
            Thread.Sleep(poll);
        }
    }
    public void Abort(int code) => abort(World, code);
    public void AllReduceInPlace(IntPtr buffer, int count, IntPtr type, IntPtr op) => Check(allreduce(InPlace, buffer, count, type, op, World), "MPI_Allreduce");
    public void Broadcast(IntPtr buffer, int count, IntPtr type, int root) => Check(bcast(buffer, count, type, root, World), "MPI_Bcast");
    public void AllGather(IntPtr send, int count, IntPtr type, IntPtr receive) => Check(allgather(send, count, type, receive, count, type, World), "MPI_Allgather");
}
