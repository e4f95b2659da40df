using Microsoft.FSharp.Core;

namespace CrOC.Host.Training;

/// <summary>C# lambdas as F# curried functions.</summary>
static class FSharpFunc
{
    public static FSharpFunc<A, R> Of<A, R>(Func<A, R> f) => FuncConvert.FromFunc(f);
    public static FSharpFunc<A, FSharpFunc<B, R>> Of<A, B, R>(Func<A, B, R> f) => FuncConvert.FromFunc(f);
}
