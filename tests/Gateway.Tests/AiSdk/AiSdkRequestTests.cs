using System.Text.Json;
using OpencodeGateway.AiSdk;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace Gateway.Tests.AiSdk;

/// <summary>What <c>POST /api/ai-sdk/chat</c> accepts from <c>DefaultChatTransport</c>, and the clear errors otherwise.</summary>
public sealed class AiSdkRequestTests
{
    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public void The_last_user_message_text_parts_are_the_prompt()
    {
        var send = AiSdkEndpoints.ParseSend(Json("""
            {"id":"chat-1","trigger":"submit-message","messageId":null,"messages":[
              {"id":"a","role":"user","parts":[{"type":"text","text":"earlier"}]},
              {"id":"b","role":"assistant","parts":[{"type":"step-start"},{"type":"text","text":"answer"}]},
              {"id":"c","role":"user","parts":[{"type":"text","text":"first"},{"type":"text","text":""},{"type":"text","text":"second"}]}]}
            """));

        Assert.Equal("chat-1", send.ChatId);
        Assert.Null(send.Continuation);
        Assert.Equal(["first", "second"], send.Parts.Select(p => p.Text));
        Assert.Equal(["messages[2].parts[0]", "messages[2].parts[2]"], send.PartFields);
    }

    [Fact]
    public void File_parts_are_attachments_of_the_prompt_in_their_order()
    {
        var send = AiSdkEndpoints.ParseSend(Json("""
            {"id":"chat-1","messages":[{"id":"c","role":"user","parts":[
              {"type":"file","mediaType":"image/png","filename":"shot.png","url":"data:image/png;base64,iVBORw0KGgo="},
              {"type":"file","mediaType":"text/plain","url":"data:text/plain;base64,aGk="},
              {"type":"text","text":"what is this?"}]}]}
            """));

        Assert.Equal(["file", "file", "text"], send.Parts.Select(p => p.Type));
        Assert.Equal(("image/png", "data:image/png;base64,iVBORw0KGgo=", "shot.png"), (send.Parts[0].Mime, send.Parts[0].Url, send.Parts[0].Filename));
        Assert.Equal(("text/plain", null), (send.Parts[1].Mime, send.Parts[1].Filename));
    }

    [Fact]
    public void An_answer_as_the_last_message_continues_it_with_its_approvals_and_answers()
    {
        var send = AiSdkEndpoints.ParseSend(Json("""
            {"id":"chat-1","trigger":"submit-message","messageId":"msg_a","messages":[
              {"id":"u","role":"user","parts":[{"type":"text","text":"go"}]},
              {"id":"msg_a","role":"assistant","parts":[
                {"type":"step-start"},{"type":"text","text":"checking"},
                {"type":"step-start"},
                {"type":"dynamic-tool","toolName":"bash","toolCallId":"call_1","state":"approval-responded","providerExecuted":true,
                 "input":{},"approval":{"id":"per_1","approved":false,"reason":"not now"}},
                {"type":"dynamic-tool","toolName":"question","toolCallId":"call_q","state":"output-available","input":{},
                 "output":{"answers":[["Red"]]},"callProviderMetadata":{"opencode":{"requestId":"que_1"}}},
                {"type":"dynamic-tool","toolName":"question","toolCallId":"que_2","state":"output-error","input":{},"errorText":"no"},
                {"type":"dynamic-tool","toolName":"bash","toolCallId":"call_2","state":"output-available","providerExecuted":true,"input":{},"output":"x"},
                {"type":"data-opencode-permission","id":"per_1","data":{}}]}]}
            """));

        var answer = Assert.IsType<ClientAnswer>(send.Continuation);
        Assert.Equal(("msg_a", 2, "messages[1]"), (answer.MessageId, answer.Steps, send.MessageField));
        Assert.Equal(new ClientApproval("per_1", false, "not now"), Assert.Single(answer.Approvals).Value);
        Assert.Equal(["call_q", "que_2"], answer.Results.Keys.Order());
        Assert.Equal(("que_1", """{"answers":[["Red"]]}"""), (answer.Results["call_q"].RequestId, answer.Results["call_q"].Output!.Value.GetRawText()));
        Assert.Equal(("no", "messages[1].parts[5]"), (answer.Results["que_2"].ErrorText, answer.Results["que_2"].Field));
        Assert.Equal(5, answer.LastStep.Count);
    }

    [Theory]
    [InlineData("""[]""", "body")]
    [InlineData("""{"messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]}""", "id")]
    [InlineData("""{"id":"a/b","messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]}""", "id")]
    [InlineData("""{"id":"..","messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]}""", "id")]
    [InlineData("""{"id":"c","trigger":"regenerate-message","messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]}""", "trigger")]
    [InlineData("""{"id":"c","messages":[]}""", "messages")]
    [InlineData("""{"id":"c","messages":[{"role":"user","parts":[{"type":"source-url","url":"https://x"}]}]}""", "messages[0].parts[0].type")]
    [InlineData("""{"id":"c","messages":[{"role":"system","parts":[{"type":"text","text":"x"}]}]}""", "messages[0].role")]
    [InlineData("""{"id":"c","messages":[{"role":"assistant","parts":[]}]}""", "messages[0].id")]
    [InlineData("""{"id":"c","messages":[{"id":"m","role":"assistant","parts":[{"type":"dynamic-tool","toolCallId":"t","approval":{"id":"per_1","approved":"yes"}}]}]}""", "messages[0].parts[0].approval.approved")]
    [InlineData("""{"id":"c","messages":[{"role":"user","parts":[{"type":"text","text":""}]}]}""", "messages[0].parts")]
    public void A_request_it_cannot_send_is_refused_naming_the_field(string body, string field)
    {
        var e = Assert.Throws<GatewayException>(() => AiSdkEndpoints.ParseSend(Json(body)));

        Assert.Equal("bad_request", e.Code);
        Assert.Equal(field, Assert.Single(e.Errors!).Key);
    }
}
