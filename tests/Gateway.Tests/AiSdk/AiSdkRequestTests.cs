using System.Text.Json;
using OpencodeGateway.AiSdk;
using OpencodeGateway.Upstreams;

namespace Gateway.Tests.AiSdk;

/// <summary>What <c>POST /api/ai-sdk/chat</c> accepts from <c>DefaultChatTransport</c>, and the clear errors otherwise.</summary>
public sealed class AiSdkRequestTests
{
    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public void The_last_user_message_text_parts_are_the_prompt()
    {
        var (chatId, parts) = AiSdkEndpoints.ParseSend(Json("""
            {"id":"chat-1","trigger":"submit-message","messageId":null,"messages":[
              {"id":"a","role":"user","parts":[{"type":"text","text":"earlier"}]},
              {"id":"b","role":"assistant","parts":[{"type":"step-start"},{"type":"text","text":"answer"}]},
              {"id":"c","role":"user","parts":[{"type":"text","text":"first"},{"type":"text","text":""},{"type":"text","text":"second"}]}]}
            """));

        Assert.Equal("chat-1", chatId);
        Assert.Equal(["first", "second"], parts.Select(p => p.Text));
    }

    [Theory]
    [InlineData("""[]""", "body")]
    [InlineData("""{"messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]}""", "id")]
    [InlineData("""{"id":"a/b","messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]}""", "id")]
    [InlineData("""{"id":"..","messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]}""", "id")]
    [InlineData("""{"id":"c","trigger":"regenerate-message","messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]}""", "trigger")]
    [InlineData("""{"id":"c","messages":[]}""", "messages")]
    [InlineData("""{"id":"c","messages":[{"role":"assistant","parts":[{"type":"text","text":"x"}]}]}""", "messages[0].role")]
    [InlineData("""{"id":"c","messages":[{"role":"user","parts":[{"type":"file","url":"data:,x","mediaType":"text/plain"}]}]}""", "messages[0].parts[0].type")]
    [InlineData("""{"id":"c","messages":[{"role":"user","parts":[{"type":"text","text":""}]}]}""", "messages[0].parts")]
    public void A_request_it_cannot_send_is_refused_naming_the_field(string body, string field)
    {
        var e = Assert.Throws<GatewayException>(() => AiSdkEndpoints.ParseSend(Json(body)));

        Assert.Equal("bad_request", e.Code);
        Assert.Equal(field, Assert.Single(e.Errors!).Key);
    }
}
