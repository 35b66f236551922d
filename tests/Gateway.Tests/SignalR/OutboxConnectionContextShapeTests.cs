using System.Reflection;
using System.Reflection.Emit;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.AspNetCore.SignalR.StackExchangeRedis;
using OpencodeGateway.Delivery.Internal;
using Xunit.Abstractions;

namespace Gateway.Tests.SignalR;

/// <summary>
/// The cluster's lifetime manager registers an <see cref="OutboxConnectionContext"/> per connection with the package's
/// <see cref="RedisHubLifetimeManager{THub}"/>: it answers for the real connection and turns writes into outbox enqueues.
/// That is not a documented extension point, so these tests fail when SignalR or the package changes shape in a way the
/// composition relies on: a member it overrides is no longer virtual, or the package starts to use a member of the
/// connection that the proxy does not answer for.
/// </summary>
public sealed class OutboxConnectionContextShapeTests(ITestOutputHelper output)
{
    private const BindingFlags Everything = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static
        | BindingFlags.DeclaredOnly;

    public static TheoryData<string> OverriddenProperties => ["ConnectionId", "Features", "Protocol", "ConnectionAborted", "User", "Items"];

    [Theory]
    [MemberData(nameof(OverriddenProperties))]
    public void The_properties_the_proxy_answers_for_are_overridable_and_overridden(string name)
    {
        var getter = typeof(HubConnectionContext).GetProperty(name, BindingFlags.Public | BindingFlags.Instance)?.GetMethod;

        Assert.NotNull(getter);
        Assert.True(getter.IsVirtual && !getter.IsFinal, $"HubConnectionContext.{name} is no longer virtual");
        Assert.Equal(typeof(OutboxConnectionContext), typeof(OutboxConnectionContext).GetProperty(name)?.GetMethod?.DeclaringType);
    }

    [Fact]
    public void UserIdentifier_is_settable_so_the_proxy_copies_it()
    {
        // Not virtual in SignalR 10.0 (a plain auto-property): the proxy takes the real connection's value when it is
        // created, which is after the hub dispatcher set it and before the package reads it.
        var property = typeof(HubConnectionContext).GetProperty(nameof(HubConnectionContext.UserIdentifier));

        Assert.True(property?.SetMethod?.IsPublic, "HubConnectionContext.UserIdentifier has no public setter any more");
    }

    [Fact]
    public void Both_WriteAsync_overloads_are_overridable_and_overridden()
    {
        foreach (var message in new[] { typeof(HubMessage), typeof(SerializedHubMessage) })
        {
            var write = typeof(HubConnectionContext).GetMethod(nameof(HubConnectionContext.WriteAsync), [message, typeof(CancellationToken)]);
            Assert.NotNull(write);
            Assert.True(write.IsVirtual && !write.IsFinal, $"HubConnectionContext.WriteAsync({message.Name}) is no longer virtual");

            var proxy = typeof(OutboxConnectionContext).GetMethod(nameof(HubConnectionContext.WriteAsync), [message, typeof(CancellationToken)]);
            Assert.Equal(typeof(OutboxConnectionContext), proxy?.DeclaringType);
        }
    }

    [Fact]
    public void Every_member_of_a_connection_the_package_uses_is_one_the_proxy_answers_for()
    {
        // The proxy's overrides, and UserIdentifier, which it copies from the real connection when it is created.
        var answered = typeof(OutboxConnectionContext).GetMethods(Everything)
            .Where(m => m.GetBaseDefinition().DeclaringType == typeof(HubConnectionContext))
            .Select(m => m.GetBaseDefinition())
            .Append(typeof(HubConnectionContext).GetProperty(nameof(HubConnectionContext.UserIdentifier))!.GetMethod!)
            .ToHashSet();

        // What the package calls on a connection, and what SignalR's connection store it keeps them in calls.
        var used = MembersCalledOn(typeof(HubConnectionContext), typeof(RedisHubLifetimeManager<>).Assembly.GetTypes()
            .Append(typeof(HubConnectionStore))).ToList();

        Assert.NotEmpty(used);
        Assert.Contains(used, m => m.Name == nameof(HubConnectionContext.WriteAsync));
        var unanswered = used.Where(m => m is not MethodInfo method || !answered.Contains(method.GetBaseDefinition()))
            .Select(m => m.ToString()).Distinct().ToList();
        output.WriteLine("used by the package: " + string.Join(", ", used.Select(m => m.ToString()).Distinct()));
        Assert.True(unanswered.Count == 0,
            "the package now uses members of HubConnectionContext that OutboxConnectionContext does not answer for: " + string.Join(", ", unanswered));
    }

    /// <summary>The members of <paramref name="declaring"/> that the IL of <paramref name="types"/> calls, loads or constructs.</summary>
    private static IEnumerable<MemberInfo> MembersCalledOn(Type declaring, IEnumerable<Type> types)
    {
        foreach (var type in types)
        {
            foreach (var method in type.GetMethods(Everything).Cast<MethodBase>().Concat(type.GetConstructors(Everything)))
            {
                var il = method.GetMethodBody()?.GetILAsByteArray();
                if (il is null)
                {
                    continue;
                }

                foreach (var token in MemberTokens(il))
                {
                    MemberInfo? member;
                    try
                    {
                        member = method.Module.ResolveMember(token, type.IsGenericType ? type.GetGenericArguments() : null,
                            method.IsGenericMethod ? method.GetGenericArguments() : null);
                    }
                    catch (ArgumentException)
                    {
                        continue; // a generic instantiation without its context; HubConnectionContext is not generic
                    }

                    if (member?.DeclaringType == declaring)
                    {
                        yield return member;
                    }
                }
            }
        }
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).GroupBy(o => o.Value).ToDictionary(g => g.Key, g => g.First());

    /// <summary>The metadata tokens of the method operands (call, callvirt, newobj, ldftn, ldvirtftn) in a method body.</summary>
    private static IEnumerable<int> MemberTokens(byte[] il)
    {
        var i = 0;
        while (i < il.Length)
        {
            var value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var opCode = OpCodesByValue[value];
            if (opCode.OperandType == OperandType.InlineMethod)
            {
                yield return BitConverter.ToInt32(il, i);
            }

            i += opCode.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
        }
    }
}
