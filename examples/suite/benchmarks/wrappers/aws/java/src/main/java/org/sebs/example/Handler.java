// AWS Lambda entry point for Java benchmarks.  sebsfs has no Java pipeline yet,
// so the example suite's systems.json lists java only to check that it is not served.
package org.sebs.example;

import java.util.Map;

public class Handler {
    public Map<String, Object> handleRequest(Map<String, Object> event) {
        return Map.of("result", event);
    }
}
