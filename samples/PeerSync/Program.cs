// Three nodes with embedded stores replicate to each other on localhost; one is partitioned and healed; a conflict is
// shown and resolved; the run ends with a table of every node's counts and Merkle root and exits 0 only if all agree.
//   dotnet run --project samples/PeerSync [-- --data <folder>]
return await PeerSync.PeerSyncApp.RunAsync(args, Console.Out);
