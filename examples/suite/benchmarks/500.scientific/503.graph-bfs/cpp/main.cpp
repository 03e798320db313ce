// 503.graph-bfs (cpp): breadth-first search with Boost.Graph (header-only) on
// the undirected graph given in the event:
//   {"vertices": n, "edges": [[u, v], ...], "source": s}   (source defaults to 0)
// The result is [order, layers, parents] like igraph's bfs: the vertices in
// visiting order, the start index of each layer in order (then order's
// length), and each vertex's BFS parent (the source's is itself, -1 for a
// vertex the search does not reach).  Neighbours are visited in the order
// their edges appear in the event.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>

#include <rapidjson/document.h>

#include "utils.hpp"

namespace {

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;

struct Search {
	std::vector<Vertex> order;
	std::vector<int64_t> parent;
	std::vector<int64_t> depth;
};

class Recorder : public boost::default_bfs_visitor {
public:
	explicit Recorder(Search &search) : search_(search) {}

	void discover_vertex(Vertex v, Graph const &) const { search_.order.push_back(v); }

	template <typename Edge>
	void tree_edge(Edge e, Graph const &g) const
	{
		Vertex from = boost::source(e, g), to = boost::target(e, g);
		search_.parent[to] = static_cast<int64_t>(from);
		search_.depth[to] = search_.depth[from] + 1;
	}

private:
	Search &search_;
};

uint64_t vertex_of(rapidjson::Value const &v, uint64_t vertices, char const *what)
{
	if (!v.IsUint64() || v.GetUint64() >= vertices)
		throw std::invalid_argument(std::string("503.graph-bfs: ") + what + " is not a vertex number below \"vertices\"");
	return v.GetUint64();
}

} // namespace

rapidjson::Document function(const rapidjson::Value &event)
{
	if (!event.IsObject() || !event.HasMember("vertices") || !event["vertices"].IsUint64()
	    || event["vertices"].GetUint64() == 0)
		throw std::invalid_argument("503.graph-bfs: the event needs a positive integer \"vertices\"");
	if (!event.HasMember("edges") || !event["edges"].IsArray())
		throw std::invalid_argument("503.graph-bfs: the event needs an array \"edges\"");
	const uint64_t vertices = event["vertices"].GetUint64();
	const uint64_t source = event.HasMember("source") ? vertex_of(event["source"], vertices, "\"source\"") : 0;

	auto build_start = timeSinceEpochMicrosec();
	Graph graph(vertices);
	for (auto const &edge : event["edges"].GetArray()) {
		if (!edge.IsArray() || edge.Size() != 2)
			throw std::invalid_argument("503.graph-bfs: an edge is not a pair [u, v]");
		boost::add_edge(vertex_of(edge[0], vertices, "an edge's end"),
				vertex_of(edge[1], vertices, "an edge's end"), graph);
	}
	auto build_end = timeSinceEpochMicrosec();

	Search search;
	search.parent.assign(vertices, -1);
	search.depth.assign(vertices, -1);
	search.parent[source] = static_cast<int64_t>(source);
	search.depth[source] = 0;
	auto bfs_start = timeSinceEpochMicrosec();
	boost::breadth_first_search(graph, boost::vertex(source, graph), boost::visitor(Recorder(search)));
	auto bfs_end = timeSinceEpochMicrosec();

	rapidjson::Document result;
	result.SetObject();
	auto &alloc = result.GetAllocator();
	rapidjson::Value order(rapidjson::kArrayType), layers(rapidjson::kArrayType), parents(rapidjson::kArrayType);
	for (size_t i = 0; i < search.order.size(); i++) {
		if (i == 0 || search.depth[search.order[i]] != search.depth[search.order[i - 1]])
			layers.PushBack(static_cast<uint64_t>(i), alloc);
		order.PushBack(static_cast<uint64_t>(search.order[i]), alloc);
	}
	layers.PushBack(static_cast<uint64_t>(search.order.size()), alloc);
	for (int64_t p : search.parent)
		parents.PushBack(p, alloc);

	rapidjson::Value bfs(rapidjson::kArrayType);
	bfs.PushBack(order, alloc).PushBack(layers, alloc).PushBack(parents, alloc);
	result.AddMember("result", bfs, alloc);

	rapidjson::Value measurement(rapidjson::kObjectType);
	measurement.AddMember("graph_generating_time", build_end - build_start, alloc);
	measurement.AddMember("compute_time", bfs_end - bfs_start, alloc);
	result.AddMember("measurement", measurement, alloc);
	return result;
}
