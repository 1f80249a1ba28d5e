namespace CrossStoreSync.Model;

/// <summary>The strict identifier rule shared by collections and edge types: they end up as table names, labels and relationship types.</summary>
internal static class Identifier
{
    public static bool IsValid(string value, int maxLength)
    {
        if (value.Length == 0 || value.Length > maxLength || !char.IsAsciiLetter(value[0]))
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                return false;
            }
        }

        return true;
    }
}
