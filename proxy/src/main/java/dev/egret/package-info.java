/**
 * Egret, a sidecar HTTPS egress proxy. A hop through it, stage by stage:
 *
 * <ol>
 *   <li>{@link dev.egret.listener} — the proxy port; {@code StrictRequestGuard} refuses
 *       ambiguous requests on the raw bytes, {@code Front} splits the target and runs the
 *       stages below;
 *   <li>{@link dev.egret.policy} — {@code Allowlist.decide} makes the {@code Decision};
 *   <li>{@link dev.egret.address} — {@code AddressGuard} resolves and checks the addresses;
 *   <li>{@link dev.egret.upgrade} (http://, absolute https://) or {@link dev.egret.tunnel}
 *       (CONNECT) — the upstream exchange;
 *   <li>{@link dev.egret.tls} — the upstream TLS profile, verifier and pins;
 *   <li>{@link dev.egret.failure} — every refusal and failure becomes one response here;
 *   <li>{@link dev.egret.telemetry} and {@link dev.egret.admin} — metrics, access log,
 *       admin endpoints.
 * </ol>
 *
 * {@link dev.egret.config} compiles the YAML into the immutable {@code EgretConfig} that
 * {@link dev.egret.EgretServer} serves from and swaps on reload; {@link dev.egret.Egret} is the
 * command line.
 */
package dev.egret;
