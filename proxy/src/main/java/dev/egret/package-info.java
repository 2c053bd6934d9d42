/**
 * Egret, an HTTPS egress proxy. A hop through it, stage by stage:
 *
 * <ol>
 *   <li>{@link dev.egret.listener} — the proxy port and the transparent listeners;
 *       {@code StrictRequestDecoder} is the one parser of the client's bytes, and
 *       {@code DownstreamConnection} runs the stages below for each request it decodes;
 *   <li>{@link dev.egret.policy} — {@code Allowlist.decide} makes the {@code Decision};
 *   <li>{@link dev.egret.address} — {@code AddressGuard} resolves and checks the addresses;
 *   <li>{@link dev.egret.exchange} — the {@code Exchange}, one value per hop, carried from stage
 *       to stage;
 *   <li>{@link dev.egret.identity} — in gateway mode, which client a request is, from its
 *       certificate, token or address;
 *   <li>{@link dev.egret.upgrade} (http://, absolute https://) or {@link dev.egret.tunnel}
 *       (CONNECT) — the upstream leg, on {@link dev.egret.upstream}'s pooled connections
 *       (upgrades), direct or through an upstream proxy ({@link dev.egret.chain});
 *   <li>{@link dev.egret.tls} — the upstream TLS profile, verifier and pins;
 *   <li>{@link dev.egret.failure} — every refusal and failure becomes one response here;
 *   <li>{@link dev.egret.telemetry}, {@link dev.egret.trace} and {@link dev.egret.admin} —
 *       metrics, access log, spans, admin endpoints.
 * </ol>
 *
 * {@link dev.egret.config} compiles the YAML into the immutable {@code EgretConfig} that
 * {@link dev.egret.EgretServer} serves from and swaps on reload; {@link dev.egret.cli.Egret} is the
 * command line, {@link dev.egret.Run} starts a server, and {@link dev.egret.lambda} runs it as a
 * Lambda extension. {@link dev.egret.runtime} is the Vert.x runtime under every stage: its {@code
 * VertxRuntime} is the one class that touches Vert.x's internal API. docs/architecture.md walks
 * the same path.
 */
package dev.egret;

