package dev.egret.propose;

/**
 * One proposed {@code allow:} rule: a host pattern (a host seen, or {@code **.domain} after
 * {@code --group}) and one upstream port, with what was seen for it.
 */
record Proposed(String host, int port, Seen seen) {}
