// Google Cloud Run functions entry point of the Java benchmarks (--target
// org.serverlessbench.Handler).  The real wrapper implements HttpFunction from
// functions-framework-api, which Debian does not package; this one has the
// same service(request, response) shape on a Reader and a Writer, the request
// and response bodies.  JSON goes through gson (systems.json gcp.java packages).
package org.serverlessbench;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.reflect.TypeToken;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.Reader;
import java.io.StringReader;
import java.io.Writer;
import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;
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

    public void service(Reader request, Writer response) throws IOException {
        Map<String, Object> event = GSON.fromJson(request, MAP_TYPE);
        if (event == null)
            event = new HashMap<>();

        double begin = System.currentTimeMillis() / 1000.0;
        Map<String, Object> result = new Function().handler(event);
        double end = System.currentTimeMillis() / 1000.0;

        Map<String, Object> body = new HashMap<>();
        body.put("begin", begin);
        body.put("end", end);
        body.put("request_id", "");
        body.put("is_cold", coldStart);
        body.put("container_id", CONTAINER_ID);
        body.put("result", result);
        coldStart = false;
        GSON.toJson(body, response);
        response.flush();
    }

    // Local check of the packaged jar:
    //   java -cp function.jar org.serverlessbench.Handler '{"sleep": 0}'
    // prints the handler's answer as one line of JSON.
    public static void main(String[] args) throws IOException {
        PrintWriter out = new PrintWriter(System.out);
        new Handler().service(new StringReader(args.length > 0 ? args[0] : "{}"), out);
        out.println();
        out.flush();
    }
}
