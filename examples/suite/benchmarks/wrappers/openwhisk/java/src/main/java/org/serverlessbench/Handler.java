// OpenWhisk entry point of the Java benchmarks: the Java action runtime calls
// the static main(JsonObject) of the action's main class.  JSON goes through
// gson (systems.json openwhisk.java packages), which the runtime also uses.
// Java 8 API only: the openwhisk Java runtime is Java 8.
package org.serverlessbench;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
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

    public static JsonObject main(JsonObject args) {
        Map<String, Object> event = GSON.fromJson(args, MAP_TYPE);
        if (event == null)
            event = new HashMap<>();

        double begin = System.currentTimeMillis() / 1000.0;
        Map<String, Object> result = new Function().handler(event);
        double end = System.currentTimeMillis() / 1000.0;

        String activationId = System.getenv("__OW_ACTIVATION_ID");
        JsonObject body = new JsonObject();
        body.addProperty("begin", begin);
        body.addProperty("end", end);
        body.addProperty("request_id", activationId == null ? "" : activationId);
        body.addProperty("is_cold", coldStart);
        body.addProperty("container_id", CONTAINER_ID);
        body.add("result", GSON.toJsonTree(result));
        coldStart = false;
        return body;
    }

    // Local check of the packaged jar:
    //   java -cp function.jar org.serverlessbench.Handler '{"sleep": 0}'
    // prints the action's answer as one line of JSON.
    public static void main(String[] args) {
        JsonObject event = GSON.fromJson(args.length > 0 ? args[0] : "{}", JsonObject.class);
        System.out.println(GSON.toJson(main(event)));
    }
}
