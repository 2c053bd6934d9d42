/**
 * The upstream connections of one loaded config: {@code UpstreamClient} keeps a bounded pool per
 * (host, checked address, TLS profile, route) on each event loop, {@code UpstreamConnection} is
 * one upstream channel with Egret's TLS and the strict {@code ResponseDecoder}. The upgrade
 * stage leases them; a reload retires the old client. Nothing here knows about a hop: that is
 * {@code dev.egret.upgrade}.
 */
package dev.egret.upstream;
