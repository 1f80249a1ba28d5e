using System.Collections;
using System.Globalization;
using System.Reflection;
using CrossStoreSync.Errors;
using Microsoft.Extensions.Configuration;

namespace CrossStoreSync.Configuration.Binding;

/// <summary>
/// Binds a configuration section onto an options object key by key, reporting every key it cannot use — an unknown
/// key (a typo would otherwise be ignored silently), a value of the wrong shape — with the key's full path and the
/// value. Scalars (strings, numbers, booleans, <see cref="TimeSpan"/>, absolute <see cref="Uri"/>s, enums and their
/// nullable forms) go to public setters; getter-only properties holding an object, a string collection or a
/// string-keyed dictionary are filled in place.
/// </summary>
internal static class SectionBinder
{
    /// <summary>Binds <paramref name="section"/> onto <paramref name="target"/>.</summary>
    /// <param name="section">The section.</param>
    /// <param name="target">The options object.</param>
    /// <param name="skippedKeys">Keys the caller handles itself (not bound, not reported).</param>
    /// <param name="excludedProperties">Properties that cannot be set from configuration (reported as unknown keys).</param>
    /// <param name="errors">Receives one message per problem.</param>
    public static void Bind(IConfiguration section, object target, IReadOnlyCollection<string> skippedKeys, IReadOnlyCollection<string> excludedProperties, List<string> errors)
    {
        var properties = Settable(target.GetType(), excludedProperties);
        foreach (var child in section.GetChildren())
        {
            if (Contains(skippedKeys, child.Key))
            {
                continue;
            }

            var property = properties.FirstOrDefault(p => string.Equals(p.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            if (property is null)
            {
                var known = string.Join(", ", properties.Select(p => p.Name).Concat(skippedKeys).Order(StringComparer.Ordinal));
                errors.Add($"{child.Path} is not a setting of {target.GetType().Name}; the settings here are: {known}.");
                continue;
            }

            BindProperty(child, target, property, errors);
        }
    }

    /// <summary>Converts one scalar value; false (with a message naming what was expected) when it does not fit.</summary>
    public static bool TryConvert(string? text, Type type, out object? value, out string expected)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying is not null && string.IsNullOrEmpty(text))
        {
            value = null;
            expected = string.Empty;
            return true;
        }

        var t = underlying ?? type;
        expected = Describe(t);
        value = null;
        if (t == typeof(string))
        {
            value = text ?? string.Empty;
            return true;
        }

        if (text is null)
        {
            return false;
        }

        var s = text.Trim();
        bool ok;
        if (t == typeof(int))
        {
            ok = int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v);
            value = v;
        }
        else if (t == typeof(long))
        {
            ok = long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v);
            value = v;
        }
        else if (t == typeof(double))
        {
            ok = double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v);
            value = v;
        }
        else if (t == typeof(bool))
        {
            ok = bool.TryParse(s, out var v);
            value = v;
        }
        else if (t == typeof(TimeSpan))
        {
            ok = TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out var v);
            value = v;
        }
        else if (t == typeof(Uri))
        {
            ok = Uri.TryCreate(s, UriKind.Absolute, out var v);
            value = v;
        }
        else if (t.IsEnum)
        {
            // Names only: a number would bind to an undefined member silently.
            object? parsed = null;
            ok = !char.IsAsciiDigit(s.FirstOrDefault()) && s.FirstOrDefault() != '-' && Enum.TryParse(t, s, ignoreCase: true, out parsed) && Enum.IsDefined(t, parsed!);
            value = ok ? parsed : null;
        }
        else
        {
            ok = false;
        }

        return ok;
    }

    private static void BindProperty(IConfigurationSection child, object target, PropertyInfo property, List<string> errors)
    {
        var type = property.PropertyType;
        if (IsScalar(type))
        {
            if (child.GetChildren().Any())
            {
                errors.Add($"{child.Path} must be a single value ({Describe(Nullable.GetUnderlyingType(type) ?? type)}), not a section.");
                return;
            }

            if (property.SetMethod is not { IsPublic: true })
            {
                errors.Add($"{child.Path} cannot be set from configuration.");
                return;
            }

            if (!TryConvert(child.Value, type, out var value, out var expected))
            {
                errors.Add($"{child.Path} is {SafeText.Quote(child.Value)}; expected {expected}.");
                return;
            }

            // JSON null arrives as an empty value: an optional string then means "not set".
            if (type == typeof(string) && value is "" && AllowsNull(property))
            {
                value = null;
            }

            property.SetValue(target, value);
            return;
        }

        var current = property.GetValue(target);
        if (current is null)
        {
            errors.Add($"{child.Path} cannot be set from configuration.");
            return;
        }

        if (DictionaryValueType(type) is { } valueType)
        {
            BindDictionaryMethod.MakeGenericMethod(valueType).Invoke(null, [child, current, errors]);
        }
        else if (IsStringCollection(type))
        {
            BindStrings(child, (ICollection<string>)current, errors);
        }
        else
        {
            Bind(child, current, [], [], errors);
        }
    }

    private static void BindStrings(IConfigurationSection section, ICollection<string> target, List<string> errors)
    {
        // Arrays arrive as children "0", "1", ...; a single value is accepted as a one-element list.
        target.Clear();
        var children = section.GetChildren().ToArray();
        if (children.Length == 0)
        {
            if (!string.IsNullOrEmpty(section.Value))
            {
                target.Add(section.Value);
            }

            return;
        }

        foreach (var child in children)
        {
            if (child.GetChildren().Any() || string.IsNullOrWhiteSpace(child.Value))
            {
                errors.Add($"{child.Path} must be a non-empty text value.");
                continue;
            }

            target.Add(child.Value);
        }
    }

    private static readonly MethodInfo BindDictionaryMethod = typeof(SectionBinder).GetMethod(nameof(BindDictionary), BindingFlags.NonPublic | BindingFlags.Static)!;

    private static void BindDictionary<T>(IConfigurationSection section, IDictionary<string, T> target, List<string> errors)
        where T : class, new()
    {
        foreach (var child in section.GetChildren())
        {
            if (!target.TryGetValue(child.Key, out var item))
            {
                item = new T();
            }

            Bind(child, item, [], [], errors);
            target[child.Key] = item;
        }
    }

    private static bool AllowsNull(PropertyInfo property) =>
        new NullabilityInfoContext().Create(property).WriteState != NullabilityState.NotNull;

    private static PropertyInfo[] Settable(Type type, IReadOnlyCollection<string> excluded) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && !Contains(excluded, p.Name))
            .Where(p => IsScalar(p.PropertyType) ? p.SetMethod is { IsPublic: true } : p.GetMethod is { IsPublic: true } && (DictionaryValueType(p.PropertyType) is not null || IsStringCollection(p.PropertyType) || IsOptionsObject(p.PropertyType)))
            .ToArray();

    private static bool Contains(IReadOnlyCollection<string> names, string name) => names.Any(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));

    private static bool IsScalar(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t == typeof(string) || t == typeof(int) || t == typeof(long) || t == typeof(double) || t == typeof(bool) || t == typeof(TimeSpan) || t == typeof(Uri) || t.IsEnum;
    }

    private static bool IsOptionsObject(Type type) => type.IsClass && type != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(type);

    private static bool IsStringCollection(Type type) =>
        type == typeof(ICollection<string>) || type == typeof(ISet<string>) || type == typeof(IList<string>) || type == typeof(List<string>) || type == typeof(HashSet<string>);

    private static Type? DictionaryValueType(Type type)
    {
        foreach (var candidate in type.GetInterfaces().Append(type))
        {
            if (candidate.IsGenericType && candidate.GetGenericTypeDefinition() == typeof(IDictionary<,>) && candidate.GetGenericArguments()[0] == typeof(string))
            {
                var valueType = candidate.GetGenericArguments()[1];
                return IsOptionsObject(valueType) && valueType.GetConstructor(Type.EmptyTypes) is not null ? valueType : null;
            }
        }

        return null;
    }

    private static string Describe(Type t) =>
        t == typeof(int) || t == typeof(long) ? "a whole number"
        : t == typeof(double) ? "a number"
        : t == typeof(bool) ? "true or false"
        : t == typeof(TimeSpan) ? "a duration such as 00:00:30 (hh:mm:ss) or 1.00:00:00"
        : t == typeof(Uri) ? "an absolute URI"
        : t.IsEnum ? "one of " + string.Join(", ", Enum.GetNames(t))
        : "text";
}
