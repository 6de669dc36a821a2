/*
 * Licensed under the Apache License, Version 2.0.
 */
package clickstream.stack.esroot;

import static org.elasticsearch.rest.RestRequest.Method.GET;
import static org.elasticsearch.rest.RestRequest.Method.HEAD;

import java.io.IOException;
import java.util.List;
import java.util.function.Supplier;

import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestChannel;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

/**
 * Answers {@code GET /} with the node's name, the cluster's name and UUID, and the build's version
 * block. {@code HEAD /} gets the same status and headers; the HTTP layer drops the body.
 *
 * <p>The document is built from the local node's own state, without a transport action: the
 * answer is about the node that was asked, which on a single-node stack is the whole cluster.
 */
final class RestRootInfoAction extends BaseRestHandler {

    private static final String TAGLINE = "You Know, for Search";

    private final Supplier<ClusterService> clusterService;

    RestRootInfoAction(Supplier<ClusterService> clusterService) {
        this.clusterService = clusterService;
    }

    @Override
    public String getName() {
        return "clickstream_root_info_action";
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(GET, "/"), new Route(HEAD, "/"));
    }

    @Override
    protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
        return channel -> channel.sendResponse(new RestResponse(RestStatus.OK, rootInfo(channel)));
    }

    private XContentBuilder rootInfo(RestChannel channel) throws IOException {
        ClusterService cluster = clusterService.get();
        XContentBuilder body = channel.newBuilder();
        body.startObject();
        body.field("name", cluster.getNodeName());
        body.field("cluster_name", cluster.getClusterName().value());
        body.field("cluster_uuid", cluster.state().metadata().clusterUUID());
        writeVersion(body, Build.current());
        body.field("tagline", TAGLINE);
        return body.endObject();
    }

    private static void writeVersion(XContentBuilder body, Build build) throws IOException {
        body.startObject("version");
        body.field("number", build.qualifiedVersion());
        body.field("build_flavor", build.flavor());
        body.field("build_type", build.type().displayName());
        body.field("build_hash", build.hash());
        body.field("build_date", build.date());
        body.field("build_snapshot", build.isSnapshot());
        body.field("lucene_version", IndexVersion.current().luceneVersion().toString());
        body.field("minimum_wire_compatibility_version", build.minWireCompatVersion());
        body.field("minimum_index_compatibility_version", build.minIndexCompatVersion());
        body.endObject();
    }
}
