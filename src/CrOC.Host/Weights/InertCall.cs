using System.Collections;
using Razorvine.Pickle;

namespace CrOC.Host.Weights;

/// <summary>
/// What a pickle's call of a function or class the reader has no constructor for gives: its name, kept as
/// inert data and never run (a numpy scalar's `numpy.core.multiarray.scalar(dtype, bytes)`, a
/// `pathlib.PosixPath`, a `torch.device` beside the weights). A dictionary, so that the pickle's SETITEMS
/// into it (a dict subclass) and its BUILD (<see cref="__setstate__"/>) both land somewhere harmless;
/// its arguments and state are dropped.
/// </summary>
/// <remarks><paramref name="unreadTensor"/>: it stands for a tensor that was not read (<see cref="InertObject.UnreadTensor"/>).</remarks>
sealed class InertCall(string className, bool unreadTensor = false) : Hashtable
{
    public string ClassName { get; } = className;
    public bool UnreadTensor { get; } = unreadTensor;

    /// <summary>Pickle's BUILD with any state (a tuple, a dictionary, a value): dropped.</summary>
    public void __setstate__(object? state) { }

    /// <summary>The constructor the reader registers for <paramref name="className"/> ("module.name") once a pickle called it.</summary>
    public sealed class Constructor(string className) : IObjectConstructor
    {
        public object construct(object[] args) => new InertCall(className);
    }
}
