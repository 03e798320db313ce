// 110.dynamic-html (java): renders templates/template.html with the user name,
// the time and event["random_len"] random numbers.  Java 8 API only: openwhisk
// runs it on Java 8.
package function;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

public class Function {

    private static final Random RANDOM = new Random();

    public Map<String, Object> handler(Map<String, Object> event) {
        Object username = event.get("username");
        int count = count(event.get("random_len"));
        List<Object> numbers = new ArrayList<>(count);
        for (int i = 0; i < count; i++)
            numbers.add(RANDOM.nextInt(1000000));

        Map<String, Object> values = new HashMap<>();
        values.put("username", username == null ? "" : username);
        values.put("cur_time", new SimpleDateFormat("yyyy-MM-dd HH:mm:ss").format(new Date()));
        values.put("random_numbers", numbers);

        Map<String, Object> result = new HashMap<>();
        try {
            result.put("result", Template.render(readTemplate("templates/template.html"), values));
        } catch (IOException e) {
            // Fail the invocation: a missing template means a broken package.
            throw new IllegalStateException("110.dynamic-html: " + e.getMessage(), e);
        }
        return result;
    }

    // jackson hands numbers over as Integer, gson as Double.
    private static int count(Object value) {
        if (value instanceof Number)
            return ((Number) value).intValue();
        if (value instanceof String) {
            try {
                return Integer.parseInt((String) value);
            } catch (NumberFormatException e) {
                return 0;
            }
        }
        return 0;
    }

    private static String readTemplate(String name) throws IOException {
        try (InputStream in = Function.class.getClassLoader().getResourceAsStream(name)) {
            if (in == null)
                throw new IOException(name + " is not in the jar");
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            for (int n; (n = in.read(buf)) > 0; )
                out.write(buf, 0, n);
            return new String(out.toByteArray(), StandardCharsets.UTF_8);
        }
    }
}
