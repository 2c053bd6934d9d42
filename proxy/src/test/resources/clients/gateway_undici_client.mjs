// One GET with undici's ProxyAgent authenticating to a gateway with a Bearer token, printing
// one JSON line: {status, body} or {error}. The test CA comes from NODE_EXTRA_CA_CERTS.
//
// usage: node gateway_undici_client.mjs PROXY_URL TOKEN URL
import { fetch, ProxyAgent } from 'undici';

const [proxy, token, url] = process.argv.slice(2);
try {
  const r = await fetch(url, {
    dispatcher: new ProxyAgent({ uri: proxy, token: `Bearer ${token}` }),
    signal: AbortSignal.timeout(10000),
  });
  console.log(JSON.stringify({ status: r.status, body: await r.text() }));
} catch (e) {
  const chain = [];
  for (let c = e; c && chain.length < 5; c = c.cause) {
    chain.push(`${c.name}${c.code ? ' ' + c.code : ''}: ${c.message}`);
  }
  console.log(JSON.stringify({ error: chain.join(' <- ') }));
}
