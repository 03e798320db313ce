// 010.sleep (java): sleeps for event["sleep"] seconds and returns that number.
// Java 8 API only: openwhisk runs it on Java 8.
package function;

import java.util.HashMap;
import java.util.Map;

public class Function {

    public Map<String, Object> handler(Map<String, Object> event) {
        double seconds = seconds(event.get("sleep"));
        try {
            Thread.sleep((long) (seconds * 1000));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Map<String, Object> result = new HashMap<>();
        result.put("result", seconds);
        return result;
    }

    // JSON libraries disagree on number types (jackson: Integer, gson: Double).
    private static double seconds(Object value) {
        if (value instanceof Number)
            return ((Number) value).doubleValue();
        if (value instanceof String) {
            try {
                return Double.parseDouble((String) value);
            } catch (NumberFormatException e) {
                return 0;
            }
        }
        return 0;
    }
}
