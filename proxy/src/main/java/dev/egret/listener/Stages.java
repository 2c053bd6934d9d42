package dev.egret.listener;

import dev.egret.exchange.Serving;
import dev.egret.exchange.Route;
import dev.egret.telemetry.Telemetry;
import dev.egret.tunnel.Tunnel;
import dev.egret.upgrade.Upgrade;
import java.util.function.Supplier;

/**
 * The stages a downstream connection runs its hops through, built once per listener.
 *
 * @param serving the config snapshot and upstream client in force; each hop reads it once
 * @param route decision, address guard, slot
 * @param upgrade requests Egret re-originates over TLS
 * @param tunnel CONNECT and transparent TLS
 * @param telemetry where every hop is reported
 * @param connections the open downstream connections, for the cap, the gauges and the drain
 */
public record Stages(Supplier<Serving> serving, Route route, Upgrade upgrade, Tunnel tunnel,
    Telemetry telemetry, Connections connections) {}
