/**
 * Gateway mode's identity stage: who a request comes from, decided before the allowlist. {@link
 * dev.egret.identity.Clients} is the compiled {@code clients:} list; {@link
 * dev.egret.identity.Clients#identify} takes what a request presents ({@link
 * dev.egret.identity.Credentials}: the verified client certificate, a {@code
 * Proxy-Authorization} token, the client address) and names the {@link
 * dev.egret.identity.Client} whose allowlist decides it, or the refusal. A sidecar has no
 * {@code clients:} and this stage names no one.
 */
package dev.egret.identity;
