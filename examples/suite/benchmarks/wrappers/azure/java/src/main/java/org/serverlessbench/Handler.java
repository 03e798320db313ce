// Azure Functions entry point of the Java benchmarks (entryPoint
// org.serverlessbench.Handler.handleRequest, HTTP trigger).  The real wrapper
// uses the annotations and HttpRequestMessage of azure-functions-java-library,
// which Debian does not package; this one takes the request body as a String
// and answers with the JSON body.  JSON goes through gson (systems.json
// azure.java packages).
package org.serverlessbench;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.reflect.TypeToken;

import java.lang.reflect.Type;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;

import function.Function;

public class Handler {

    // The answer carries HTML (110.dynamic-html): keep < > & as they are.
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();
    private static final Type MAP_TYPE = new TypeToken<Map<String, Object>>() {}.getType();
    private static final String CONTAINER_ID = UUID.randomUUID().toString();
    private static boolean coldStart = true;

    public String handleRequest(String requestBody, Object context) {
        Map<String, Object> event = null;
        if (requestBody != null && !requestBody.isEmpty())
            event = GSON.fromJson(requestBody, MAP_TYPE);
        if (event == null)
            event = new HashMap<>();

        double begin = System.currentTimeMillis() / 1000.0;
        Map<String, Object> result = new Function().handler(event);
        double end = System.currentTimeMillis() / 1000.0;

        Map<String, Object> body = new HashMap<>();
        body.put("begin", begin);
        body.put("end", end);
        body.put("request_id", invocationId(context));
        body.put("is_cold", coldStart);
        body.put("container_id", CONTAINER_ID);
        body.put("result", result);
        coldStart = false;
        return GSON.toJson(body);
    }

    // ExecutionContext.getInvocationId() by reflection: no compile-time dependency on the library.
    private static String invocationId(Object context) {
        if (context == null)
            return "";
        try {
            return String.valueOf(context.getClass().getMethod("getInvocationId").invoke(context));
        } catch (ReflectiveOperationException e) {
            return "";
        }
    }

    // Local check of the packaged jar:
    //   java -cp function.jar org.serverlessbench.Handler '{"sleep": 0}'
    // prints the handler's answer as one line of JSON.
    public static void main(String[] args) {
        System.out.println(new Handler().handleRequest(args.length > 0 ? args[0] : "{}", null));
    }
}
