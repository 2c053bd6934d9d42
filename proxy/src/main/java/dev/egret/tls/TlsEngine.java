package dev.egret.tls;

import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslProvider;
import java.util.Locale;

/**
 * Which TLS implementation originates upstream TLS: BoringSSL through Netty's OpenSSL engine
 * (netty-tcnative-boringssl-static) where its native library loads, else the JDK's SSLEngine.
 * Chosen once per process. Both run the same {@link StrictTrustManager}, key manager, protocol
 * list and cipher suites, so a rule's checks do not depend on the engine; BoringSSL is the
 * default because it measured faster (README, "Performance"), most of all under the image's
 * C1-only JIT, where the JDK's AES-GCM runs without its intrinsics.
 *
 * <p>{@code -Degret.tls.engine=jdk} forces the JDK's engine (to compare, or if a platform's
 * native library misbehaves); {@code openssl} insists on BoringSSL and refuses to start without it.
 */
public enum TlsEngine {
  OPENSSL, JDK;

  private static final String PROPERTY = "egret.tls.engine";
  private static volatile TlsEngine chosen;
  private static volatile String why;

  /** The engine this process uses. */
  public static TlsEngine current() {
    TlsEngine e = chosen;
    if (e == null) {
      synchronized (TlsEngine.class) {
        if (chosen == null) {
          choose();
        }
        e = chosen;
      }
    }
    return e;
  }

  /**
   * True when {@code -Degret.tls.engine} is set: then the engine is chosen before Egret says it
   * is ready, so a wrong value or a missing BoringSSL refuses the start. Otherwise it is chosen
   * with the first TLS context, after start-up ({@link TlsProfile}): loading BoringSSL extracts
   * its native library from the jar, about 0.15 CPU-seconds that no refused request, tunnel or
   * scrape needs.
   */
  public static boolean asked() {
    return !System.getProperty(PROPERTY, "").isBlank();
  }

  /** One line for the start-up log: the engine and, when it is the JDK's, why. */
  public static String describe() {
    TlsEngine e = current();
    return e == OPENSSL ? "BoringSSL (" + OpenSsl.versionString() + ")"
        : "JDK SSLEngine (" + why + ")";
  }

  private static void choose() {
    String asked = System.getProperty(PROPERTY, "").trim().toLowerCase(Locale.ROOT);
    switch (asked) {
      case "jdk" -> {
        why = "-D" + PROPERTY + "=jdk";
        chosen = JDK;
      }
      case "", "openssl" -> {
        if (OpenSsl.isAvailable()) {
          chosen = OPENSSL;
        } else if (asked.isEmpty()) {
          why = "BoringSSL did not load: " + OpenSsl.unavailabilityCause();
          chosen = JDK;
        } else {
          throw new IllegalStateException("-D" + PROPERTY + "=openssl, but BoringSSL did not load: "
              + OpenSsl.unavailabilityCause());
        }
      }
      default -> throw new IllegalStateException("-D" + PROPERTY + " must be openssl or jdk, not '"
          + asked + "'");
    }
  }

  /**
   * The Netty provider upstream TLS contexts are built with. {@code OPENSSL} rather than
   * {@code OPENSSL_REFCNT}: a context retired by a reload is freed when it is no longer reachable,
   * so no code path has to remember to release it.
   */
  public SslProvider provider() {
    return this == OPENSSL ? SslProvider.OPENSSL : SslProvider.JDK;
  }
}
