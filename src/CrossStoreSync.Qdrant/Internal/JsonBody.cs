using System.Buffers;
using System.Text.Json;

namespace CrossStoreSync.Qdrant.Internal;

/// <summary>Writes a request body with <see cref="Utf8JsonWriter"/>: no intermediate object graph on the write path.</summary>
internal static class JsonBody
{
    public static ReadOnlyMemory<byte> Write<TState>(TState state, Action<Utf8JsonWriter, TState> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer, state);
        }

        return buffer.WrittenMemory;
    }

    /// <summary>Writes <c>{"key": path, "match": {"value": value}}</c>.</summary>
    public static void MatchCondition(Utf8JsonWriter w, string path, bool value)
    {
        w.WriteStartObject();
        w.WriteString("key", path);
        w.WriteStartObject("match");
        w.WriteBoolean("value", value);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Writes <c>{"key": path, "match": {"value": value}}</c>.</summary>
    public static void MatchCondition(Utf8JsonWriter w, string path, string value)
    {
        w.WriteStartObject();
        w.WriteString("key", path);
        w.WriteStartObject("match");
        w.WriteString("value", value);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Writes <c>{"key": path, "match": {"value": value}}</c>.</summary>
    public static void MatchCondition(Utf8JsonWriter w, string path, long value)
    {
        w.WriteStartObject();
        w.WriteString("key", path);
        w.WriteStartObject("match");
        w.WriteNumber("value", value);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
