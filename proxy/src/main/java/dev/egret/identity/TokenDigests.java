package dev.egret.identity;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Every configured token digest with its client, and the one lookup a presented token gets:
 *
 * <pre>{@code
 * byte[] digest = TokenDigests.sha256(presentedToken);
 * Client c = digests.find(digest);   // null when no client has it
 * }</pre>
 *
 * <p>Why it is written this way: the presented token is hashed first, so what is looked up is a
 * SHA-256 output the client cannot steer byte by byte. The digest then selects at most one
 * candidate through a hash table, and the candidate is confirmed with {@link
 * MessageDigest#isEqual} (constant time in the contents). What the table's timing could tell is
 * only about the digest of the guess, which a client cannot aim at a configured digest without a
 * SHA-256 preimage; and the cost per request stays the same with 1,000 clients' tokens as with
 * one (comparing against every digest in turn made a gateway's hop cost grow with its clients).
 */
final class TokenDigests {
  /** {@code sha256:} and 64 lower-case hex digits: how a token is written in the config. */
  static final Pattern WRITTEN = Pattern.compile("sha256:[0-9a-f]{64}");

  private final byte[][] digests;
  private final Client[] owners;
  /** Each digest's slot in {@link #digests}, keyed by the digest's bytes. */
  private final java.util.Map<java.nio.ByteBuffer, Integer> slots;

  TokenDigests(List<Client> clients) {
    List<byte[]> d = new ArrayList<>();
    List<Client> o = new ArrayList<>();
    for (Client c : clients) {
      for (byte[] t : c.tokens()) {
        d.add(t);
        o.add(c);
      }
    }
    this.digests = d.toArray(new byte[0][]);
    this.owners = o.toArray(new Client[0]);
    java.util.Map<java.nio.ByteBuffer, Integer> index = new java.util.HashMap<>();
    for (int i = 0; i < digests.length; i++) {
      // Duplicates are a config error (one token, one client); the first one stands here.
      index.putIfAbsent(java.nio.ByteBuffer.wrap(digests[i]), i);
    }
    this.slots = java.util.Map.copyOf(index);
  }

  boolean isEmpty() {
    return digests.length == 0;
  }

  /** The client whose configured digest equals {@code digest}, or null; see the class doc. */
  Client find(byte[] digest) {
    Integer slot = slots.get(java.nio.ByteBuffer.wrap(digest));
    return slot != null && MessageDigest.isEqual(digests[slot], digest) ? owners[slot] : null;
  }

  /** The SHA-256 of a presented token's UTF-8 bytes. */
  static byte[] sha256(String token) {
    try {
      // A clone of one prototype: getInstance looks the algorithm up among the providers on
      // every call, which is most of the cost of hashing a short token once per request.
      return ((MessageDigest) SHA256.clone()).digest(token.getBytes(StandardCharsets.UTF_8));
    } catch (CloneNotSupportedException e) {
      throw new IllegalStateException("the JDK's SHA-256 can be cloned", e);
    }
  }

  private static final MessageDigest SHA256;

  static {
    try {
      SHA256 = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  /**
   * The digest a config value writes ({@code sha256:} + 64 lower-case hex).
   *
   * @throws IllegalArgumentException saying what is wrong, never quoting the value (it may be a
   *     token pasted by mistake)
   */
  static byte[] parse(String written) {
    if (!WRITTEN.matcher(written).matches()) {
      String why = !written.startsWith("sha256:") ? "does not start with 'sha256:'"
          : written.length() != 71 ? "has " + (written.length() - 7) + " characters after "
              + "'sha256:', not 64"
          : "has a character that is not a lower-case hex digit";
      throw new IllegalArgumentException("a token must be written as its hash, 'sha256:' and 64 "
          + "lower-case hex digits (printf %s TOKEN | sha256sum); this value " + why);
    }
    return HexFormat.of().parseHex(written.substring(7));
  }
}
