using System.Runtime.InteropServices;
using OpencodeGateway.Bench;

// Load generator and measurement driver. Each command writes one JSON document to --out.
//   scenario-a --oc-env=FILE --gateway-dll=DLL [--watchers=1,10,100,500] [--tokens=2000] [--delay=10]
//   fanout     --gateway-dll=DLL [--configs=1x1000,100x10,1000x1] [--levels=...] [--step-seconds=4]
//   idle       --gateway-dll=DLL [--connections=1000,5000,10000]
//   client-cost --gateway-dll=DLL [--connections=1000] [--sessions=10] [--events=200]
//   cluster    --gateway-dll=DLL --cluster-sh=deploy/cluster/cluster.sh --state-dir=DIR [--port-base=N] (see ClusterScenario)
//   joins      --oc-env=FILE --gateway-dll=DLL [--joins=200] [--rounds=3] (see JoinScenario)
//   agent-run  --oc-env=FILE --gateway-dll=DLL [--lines=400] [--turns=10,20,30,40,60] (see AgentRunScenario)
//   limits     --before-dll=DLL --gateway-dll=DLL [--cluster-sh=… --state-dir=DIR] [--connections=300] [--calls=2000] (see LimitsScenario)
var a = new Args(args);
ThreadPool.GetMinThreads(out _, out var io);
ThreadPool.SetMinThreads(Environment.ProcessorCount * 4, io);
object result = a.Command switch
{
    "scenario-a" => await ScenarioA.RunAsync(a),
    "fanout" => await ScenarioB.RunFanoutAsync(a),
    "idle" => await ScenarioB.RunIdleAsync(a),
    "client-cost" => await ClientCost.RunAsync(a),
    "cluster" => await ClusterScenario.RunAsync(a),
    "joins" => await JoinScenario.RunAsync(a),
    "agent-run" => await AgentRunScenario.RunAsync(a),
    "limits" => await LimitsScenario.RunAsync(a),
    _ => throw new ArgumentException("command: scenario-a | fanout | idle | client-cost | cluster | joins | agent-run | limits"),
};
var doc = new Dictionary<string, object?>
{
    ["command"] = a.Command,
    ["loadGenerator"] = new { gc = System.Runtime.GCSettings.IsServerGC ? "server" : "workstation", runtime = RuntimeInformation.FrameworkDescription },
    ["result"] = result,
};
Json.Write(a.Get("out"), doc);
