using BenchmarkDotNet.Running;

// Run all:        dotnet run -c Release --project benchmarks/CrossStoreSync.Benchmarks -- --filter '*'
// Run one group:  dotnet run -c Release --project benchmarks/CrossStoreSync.Benchmarks -- --filter '*SqliteSync*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
