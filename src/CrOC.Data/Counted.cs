namespace CrOC.Data;

/// <summary>A count with its noun in the right number, for the lines users read: "1 image", "2 images".</summary>
public static class Counted
{
    /// <summary>"<paramref name="count"/> <paramref name="noun"/>", the noun with an "s" unless the count is 1.</summary>
    public static string Of(long count, string noun) => Of(count, noun, noun + "s");

    /// <summary>For nouns whose plural is not noun + "s" ("class", "classes"), and for phrases whose verb agrees too ("image gives", "images give").</summary>
    public static string Of(long count, string noun, string plural) => $"{count} {(count == 1 ? noun : plural)}";
}
