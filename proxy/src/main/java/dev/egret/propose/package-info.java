/**
 * {@code egret propose}: turns what Egret saw (its JSON access log, typically from a run in
 * {@code mode: report}) into a proposed allowlist, the step between watching and blocking.
 *
 * <p>{@link dev.egret.propose.Propose} is the command; {@code AccessLogReader} reads the log into
 * {@code Sighting}s, the command counts them per host and upstream port (at most {@code
 * MAX_DESTINATIONS}, each a {@code Seen} of capped {@code Tally}s), {@code Grouping} folds hosts
 * under their deepest common parent, never above the registrable domain of the public suffix
 * list, and {@code ProposalWriter} streams the config, merged into an existing one if asked,
 * within the 4 MiB a config file may have.
 */
package dev.egret.propose;
