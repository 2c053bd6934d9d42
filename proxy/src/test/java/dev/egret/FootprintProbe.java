package dev.egret;

/**
 * Run in a child JVM by the footprint tests: prints this JVM's refusal and exits 1, or prints
 * {@code fits} and exits 0, so the flags are read by the JVM they belong to.
 */
public final class FootprintProbe {
  private FootprintProbe() {}

  public static void main(String[] args) {
    System.exit(Footprint.fits(System.out) ? 0 : 1);
  }
}
