using Microsoft.Extensions.Options;

namespace CrossStoreSync.SurrealDb.DependencyInjection;

/// <summary>Turns <see cref="SurrealDbOptions.Validate"/> failures into an <see cref="OptionsValidationException"/> at start-up, with the message that quotes the bad value.</summary>
internal sealed class SurrealDbOptionsValidator : IValidateOptions<SurrealDbOptions>
{
    public ValidateOptionsResult Validate(string? name, SurrealDbOptions options)
    {
        try
        {
            options.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException ex)
        {
            return ValidateOptionsResult.Fail(ex.Message);
        }
    }
}
