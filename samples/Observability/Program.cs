using Observability;

// dotnet run --project samples/Observability, then: curl http://127.0.0.1:5080/metrics, curl http://127.0.0.1:5080/health
await ObservabilityApp.Build(args).RunAsync();
