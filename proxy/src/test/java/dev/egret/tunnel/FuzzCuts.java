package dev.egret.tunnel;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Where the fuzz tests cut a byte stream into the reads a peer's segments would make. */
final class FuzzCuts {
  private FuzzCuts() {}

  /** Up to 64 cut points, taken first so the rest of the input is the stream itself. */
  static int[] consume(FuzzedDataProvider data) {
    int n = data.consumeInt(0, 64);
    int[] cuts = new int[n];
    for (int i = 0; i < n; i++) {
      cuts[i] = data.consumeInt(0, 1 << 17);
    }
    return cuts;
  }

  /** The stream in pieces, cut at each point that falls inside it; no piece is empty. */
  static List<byte[]> split(byte[] stream, int[] cuts) {
    int[] at = Arrays.stream(cuts).filter(c -> c > 0 && c < stream.length).sorted().distinct()
        .toArray();
    List<byte[]> pieces = new ArrayList<>(at.length + 1);
    int from = 0;
    for (int c : at) {
      pieces.add(Arrays.copyOfRange(stream, from, c));
      from = c;
    }
    if (from < stream.length) {
      pieces.add(Arrays.copyOfRange(stream, from, stream.length));
    }
    return pieces;
  }
}
