return await OpencodeGateway.GatewayApplication.RunAsync(args);
