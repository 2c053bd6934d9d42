package dev.egret.testing;

import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;
import java.util.ArrayList;
import java.util.List;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * Records every buffer leak Netty's leak detector reports in the test JVM, so a test can fail on
 * one instead of a log line nobody reads. A test that wants them sets the level it needs ({@code
 * ResourceLeakDetector.setLevel(PARANOID)} tracks every buffer), forces the collection that makes
 * a leak visible, and reads {@link #leaks}.
 *
 * <p>Netty builds each detector once, when its class (for buffers, {@code AbstractByteBuf}) is
 * first loaded, from the factory in force then. So this installs its factory when the test
 * launcher session opens, before any test class loads Netty: registered as a {@link
 * LauncherSessionListener} in {@code META-INF/services}. The detectors it builds are Netty's own
 * that also record what they report ({@link RecordingLeakDetector}); nothing else changes for the
 * other tests. A test never sets a leak listener of its own for this ({@code
 * ByteBufUtil.setLeakListener}): it reads {@link #leaks} with a marker of its own.
 */
public final class LeakRecorder implements LauncherSessionListener {
  private static final List<String> LEAKS = new ArrayList<>();
  private static volatile boolean installed;

  @Override
  public void launcherSessionOpened(LauncherSession session) {
    install();
  }

  /** Installs the recording factory; idempotent. Too late once Netty's buffers are loaded. */
  public static synchronized void install() {
    if (installed) {
      return;
    }
    installed = true;
    ResourceLeakDetectorFactory.setResourceLeakDetectorFactory(new ResourceLeakDetectorFactory() {
      @Override
      @SuppressWarnings("deprecation") // the abstract method every factory implements
      public <T> ResourceLeakDetector<T> newResourceLeakDetector(
          Class<T> resource, int samplingInterval, long maxActive) {
        return new RecordingLeakDetector<>(resource, samplingInterval);
      }
    });
  }

  /** True when the recording factory was installed (so leaks are being recorded). */
  public static boolean installed() {
    return installed;
  }

  static synchronized void record(String leak) {
    LEAKS.add(leak);
  }

  /** The leaks reported so far whose records mention {@code marker}; clears nothing. */
  public static synchronized List<String> leaks(String marker) {
    return LEAKS.stream().filter(l -> l.contains(marker)).toList();
  }
}
