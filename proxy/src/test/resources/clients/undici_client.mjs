// One GET with Node's undici fetch and EnvHttpProxyAgent (what Node's fetch uses with the proxy
// environment variables), printing one JSON line: {status, body, proxyStatus} or {error}.
// The test CA comes from NODE_EXTRA_CA_CERTS.
//
// usage: node undici_client.mjs URL
import { fetch, EnvHttpProxyAgent } from 'undici';

process.removeAllListeners('warning'); // EnvHttpProxyAgent's "experimental" warning

const url = process.argv[2];
try {
  const r = await fetch(url, {
    dispatcher: new EnvHttpProxyAgent(),
    signal: AbortSignal.timeout(10000),
  });
  const body = await r.text();
  console.log(JSON.stringify({ status: r.status, body, proxyStatus: r.headers.get('proxy-status') }));
} catch (e) {
  // fetch wraps the agent's error (e.g. "Proxy response (403) !== 200 when HTTP Tunneling")
  // two causes deep; print the whole chain.
  const chain = [];
  for (let c = e; c && chain.length < 5; c = c.cause) {
    chain.push(`${c.name}${c.code ? ' ' + c.code : ''}: ${c.message}`);
  }
  console.log(JSON.stringify({ error: chain.join(' <- ') }));
}
