// The template language the suite's dynamic-html benchmarks share (python's
// sebs_example_util.render, nodejs's sebs-example-lib): {{ name }} inserts a
// value HTML-escaped; {% for x in list %}...{% endfor %} repeats its body.  A
// stand-in for the mustache library SeBS's Java benchmark uses, which Debian
// does not package.
package function;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

final class Template {

    private static final Pattern LOOP = Pattern.compile(
            "\\{%\\s*for\\s+(\\w+)\\s+in\\s+(\\w+)\\s*%\\}([\\s\\S]*?)\\{%\\s*endfor\\s*%\\}");
    private static final Pattern VALUE = Pattern.compile("\\{\\{\\s*([A-Za-z_]\\w*)\\s*\\}\\}");

    private Template() {}

    static String render(String template, Map<String, Object> values) {
        StringBuffer looped = new StringBuffer();
        Matcher loop = LOOP.matcher(template);
        while (loop.find()) {
            StringBuilder body = new StringBuilder();
            Object seq = values.get(loop.group(2));
            if (seq instanceof List) {
                for (Object item : (List<?>) seq) {
                    Map<String, Object> inner = new HashMap<>(values);
                    inner.put(loop.group(1), item);
                    body.append(render(loop.group(3), inner));
                }
            }
            loop.appendReplacement(looped, Matcher.quoteReplacement(body.toString()));
        }
        loop.appendTail(looped);

        StringBuffer out = new StringBuffer();
        Matcher value = VALUE.matcher(looped);
        while (value.find()) {
            Object v = values.get(value.group(1));
            value.appendReplacement(out, Matcher.quoteReplacement(escapeHtml(v == null ? "" : String.valueOf(v))));
        }
        value.appendTail(out);
        return out.toString();
    }

    private static String escapeHtml(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
            case '&': b.append("&amp;"); break;
            case '<': b.append("&lt;"); break;
            case '>': b.append("&gt;"); break;
            case '"': b.append("&quot;"); break;
            case '\'': b.append("&#39;"); break;
            default: b.append(c);
            }
        }
        return b.toString();
    }
}
