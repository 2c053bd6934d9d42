package dev.egret.testing;

import io.netty.util.ResourceLeakDetector;

/**
 * Netty's leak detector, reporting every leak it finds to {@link LeakRecorder} whatever the
 * logger's level and whatever leak listener a test sets. {@link LeakRecorder}'s factory builds
 * it, and the test JVM also names it in {@code -Dio.netty.customResourceLeakDetector} (surefire's
 * argLine), so Netty builds every detector from it however early a test loads Netty's buffers.
 *
 * <p>It records from {@link #reportTracedLeak} and {@link #reportUntracedLeak}, which Netty calls
 * for every leak it reports, not through a leak listener: a detector holds one listener, and
 * {@code ByteBufUtil.setLeakListener} (which a test may call for its own check) replaces it for
 * every buffer in the JVM. A recorder that was a listener went deaf in a full run once a fuzz
 * test had set its own.
 */
public final class RecordingLeakDetector<T> extends ResourceLeakDetector<T> {

  /** The constructor Netty's default factory calls for a custom detector class. */
  public RecordingLeakDetector(Class<?> resourceType, int samplingInterval) {
    super(resourceType, samplingInterval);
  }

  /**
   * The constructor Netty's default factory looks for first; without it, it logs that it
   * "could not load" this class before it falls back to the one above.
   */
  public RecordingLeakDetector(Class<?> resourceType, int samplingInterval, long maxActive) {
    this(resourceType, samplingInterval);
  }

  // Netty reports only while its logger logs errors; a test that quiets logging must not
  // silence the leak check with it.
  @Override
  protected boolean needReport() {
    return true;
  }

  @Override
  protected void reportTracedLeak(String resourceType, String records) {
    LeakRecorder.record(resourceType + ": " + records);
    super.reportTracedLeak(resourceType, records);
  }

  @Override
  protected void reportUntracedLeak(String resourceType) {
    LeakRecorder.record(resourceType + ": untraced (the level was below ADVANCED when it was"
        + " allocated)");
    super.reportUntracedLeak(resourceType);
  }
}
