package dev.egret.enforce;

/** Which packet filter the rules are for: {@code iptables-restore} or {@code ip6tables-restore}. */
public enum Family {
  IPV4("iptables-restore", "127.0.0.0/8", "icmp-port-unreachable", "/32"),
  IPV6("ip6tables-restore", "::1/128", "icmp6-port-unreachable", "/128");

  final String restoreCommand;
  final String loopback;
  final String rejectOther;
  final String hostMask;

  Family(String restoreCommand, String loopback, String rejectOther, String hostMask) {
    this.restoreCommand = restoreCommand;
    this.loopback = loopback;
    this.rejectOther = rejectOther;
    this.hostMask = hostMask;
  }
}
