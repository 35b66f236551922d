namespace OpencodeGateway.Client.Internal;

/// <summary>The part field a handle names: a streamed field (path) of one part.</summary>
internal readonly record struct PartField(string MessageId, string PartId, string Field);
