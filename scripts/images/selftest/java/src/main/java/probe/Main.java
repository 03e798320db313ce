/* Probe of `scripts/prepare-images --self-test`: uses the shaded jackson-databind. */
package probe;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Map;
import java.util.TreeMap;

public class Main {
	public static void main(String[] args) throws Exception {
		ObjectMapper mapper = new ObjectMapper();
		Map<?, ?> event = mapper.readValue(args.length > 0 ? args[0] : "{}", Map.class);
		Map<String, Object> result = new TreeMap<>();
		result.put("keys", event.size());
		result.put("probe", "ok");
		System.out.println(mapper.writeValueAsString(result));
	}
}
