package dev.egret.exchange;

import dev.egret.config.EgretConfig;
import dev.egret.trace.Tracing;
import dev.egret.upstream.UpstreamClient;

/**
 * What the proxy serves from right now: a compiled config, and the upstream client and tracing
 * built for it.
 * Swapped whole by a reload; each hop reads it once when it starts and keeps that snapshot.
 */
public record Serving(EgretConfig config, UpstreamClient upstream, Tracing tracing) {}
