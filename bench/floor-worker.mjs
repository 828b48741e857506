// The runtime's floor under `wrangler dev`, for bench/run.py: the least a Worker can do to
// pass a request through. It reads the incoming body as text, forwards it with fetch to
// env.UPSTREAM_URL (with the upstream key from env.UPSTREAM_KEY), and returns the upstream
// body stream with its status and content-type. Nothing is parsed, checked or logged.
//
// A request to a path ending in "/v1/messages" goes to the mock's Anthropic endpoint instead
// (env.UPSTREAM_MESSAGES_URL, with env.UPSTREAM_ANT_KEY and anthropic-version): the floor of proxying the
// very Claude stream the gateway converts for a chat client.
//
// One extra path, used only as a reference for the echo provider: a request whose path ends
// in "/local" is answered by the worker itself with a small fixed JSON body (after reading
// the incoming body), i.e. the floor of a locally answered request.
const LOCAL_BODY = '{"id":"local","object":"chat.completion","choices":[]}';

export default {
  async fetch(request, env) {
    const body = await request.text();
    if (new URL(request.url).pathname.endsWith("/local")) {
      return new Response(LOCAL_BODY, { headers: { "content-type": "application/json" } });
    }
    const claude = new URL(request.url).pathname.endsWith("/v1/messages");
    const upstream = claude
      ? await fetch(env.UPSTREAM_MESSAGES_URL, {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": env.UPSTREAM_ANT_KEY, "anthropic-version": "2023-06-01" },
          body,
        })
      : await fetch(env.UPSTREAM_URL, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${env.UPSTREAM_KEY}` },
          body,
        });
    return new Response(upstream.body, {
      status: upstream.status,
      headers: { "content-type": upstream.headers.get("content-type") || "application/octet-stream" },
    });
  },
};
