/**
 * {@code egret propose}: turns what Egret saw (its JSON access log, typically from a run in
 * {@code mode: report}) into a proposed allowlist, the step between watching and blocking.
 *
 * <p>{@link dev.egret.propose.Propose} is the command; {@code AccessLogReader} reads the log into
 * {@code Sighting}s, {@code Destinations} counts them per host and upstream port (bounded),
 * {@code Grouping} folds hosts under one registrable domain with the public suffix list, and
 * {@code ProposalWriter} prints the config, merged into an existing one if asked.
 */
package dev.egret.propose;
