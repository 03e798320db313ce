// AWS Lambda entry point of the Java benchmarks: org.serverlessbench.Handler::handleRequest.
// The real wrapper implements RequestHandler from aws-lambda-java-core, which
// Debian does not package; the Lambda Java runtime also finds a public
// handleRequest(Map, Context) by name, so the context is taken as Object here.
// JSON goes through jackson-databind (systems.json aws.java packages).
package org.serverlessbench;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.HashMap;
import java.util.Map;
import java.util.UUID;

import function.Function;

public class Handler {

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final String CONTAINER_ID = UUID.randomUUID().toString();
    private static boolean coldStart = true;

    public Map<String, Object> handleRequest(Map<String, Object> event, Object context) {
        double begin = System.currentTimeMillis() / 1000.0;
        Map<String, Object> result = new Function().handler(unwrapHttpBody(event));
        double end = System.currentTimeMillis() / 1000.0;

        Map<String, Object> body = new HashMap<>();
        body.put("begin", begin);
        body.put("end", end);
        body.put("request_id", requestId(context));
        body.put("is_cold", coldStart);
        body.put("container_id", CONTAINER_ID);
        body.put("result", result);
        coldStart = false;
        return body;
    }

    // An API Gateway trigger delivers the event as a JSON string under "body".
    @SuppressWarnings("unchecked")
    private static Map<String, Object> unwrapHttpBody(Map<String, Object> event) {
        if (event == null)
            return new HashMap<>();
        Object body = event.get("body");
        if (body instanceof String) {
            try {
                return MAPPER.readValue((String) body, Map.class);
            } catch (Exception e) {
                // not JSON: the benchmark gets the event as it came
            }
        }
        return event;
    }

    // Context.getAwsRequestId() by reflection: no compile-time dependency on the Lambda API.
    private static String requestId(Object context) {
        if (context == null)
            return "";
        try {
            return String.valueOf(context.getClass().getMethod("getAwsRequestId").invoke(context));
        } catch (ReflectiveOperationException e) {
            return "";
        }
    }

    // Local check of the packaged jar:
    //   java -cp function.jar org.serverlessbench.Handler '{"sleep": 0}'
    // prints the handler's answer as one line of JSON.
    @SuppressWarnings("unchecked")
    public static void main(String[] args) throws Exception {
        Map<String, Object> event = MAPPER.readValue(args.length > 0 ? args[0] : "{}", Map.class);
        System.out.println(MAPPER.writeValueAsString(new Handler().handleRequest(event, null)));
    }
}
