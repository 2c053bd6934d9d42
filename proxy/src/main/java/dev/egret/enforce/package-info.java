/**
 * Enforcement around the proxy: the packet-filter rules ({@code egret iptables}) that send a
 * task's outbound connections to Egret's transparent listeners and reject whatever else would
 * leave the network namespace, so an app that ignores {@code HTTP_PROXY} is held to the same
 * allowlist.
 */
package dev.egret.enforce;
