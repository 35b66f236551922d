using System.Collections.Immutable;

namespace OpencodeGateway.Client.Internal;

/// <summary>Lists kept sorted by an ordinal id (opencode's ids sort by creation): find, insert or replace by id.</summary>
internal static class SortedById
{
    /// <summary>The index of <paramref name="id"/>, or the bitwise complement of where it would go.</summary>
    public static int IndexOf<T>(ImmutableList<T> list, string id, Func<T, string> idOf)
    {
        // Most changes touch the newest item: look at the end first.
        if (list.Count > 0)
        {
            var last = string.CompareOrdinal(idOf(list[^1]), id);
            if (last == 0)
            {
                return list.Count - 1;
            }

            if (last < 0)
            {
                return ~list.Count;
            }
        }

        var (lo, hi) = (0, list.Count - 1);
        while (lo <= hi)
        {
            var mid = lo + (hi - lo) / 2;
            var order = string.CompareOrdinal(idOf(list[mid]), id);
            if (order == 0)
            {
                return mid;
            }

            if (order < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return ~lo;
    }

    public static T? Find<T>(ImmutableList<T> list, string id, Func<T, string> idOf) where T : class =>
        IndexOf(list, id, idOf) is var i and >= 0 ? list[i] : null;

    /// <summary><paramref name="list"/> with <paramref name="item"/> in the place of the one with its id, or inserted in order.</summary>
    public static ImmutableList<T> Upsert<T>(ImmutableList<T> list, T item, Func<T, string> idOf)
    {
        var i = IndexOf(list, idOf(item), idOf);
        return i >= 0 ? list.SetItem(i, item) : list.Insert(~i, item);
    }
}
