/*
 * Licensed under the Apache License, Version 2.0.
 */
package clickstream.stack.esroot;

import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;

import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;

/**
 * The analysis components that Elasticsearch's own {@code .security} index declares for its
 * {@code email} analyzer ({@code uax_url_email}, {@code pattern_capture}, {@code lowercase},
 * {@code unique}), from the Lucene classes the server already ships.
 *
 * <p>They belong to the analysis-common module, which the integ-test-zip lacks: without them the
 * secured local stack could not create the index that holds its users and roles. {@code unique}
 * is approximated by Lucene's same-position duplicate removal, which is all that analyzer needs.
 */
final class SecurityIndexAnalysis {

    private SecurityIndexAnalysis() {}

    static Map<String, AnalysisProvider<TokenFilterFactory>> tokenFilters() {
        return Map.of(
            "pattern_capture",
            (indexSettings, environment, name, settings) -> {
                List<String> regexes = settings.getAsList("patterns");
                Pattern[] patterns = regexes.stream().map(Pattern::compile).toArray(Pattern[]::new);
                boolean preserve = settings.getAsBoolean("preserve_original", true);
                return filter(name, in -> new PatternCaptureGroupTokenFilter(in, preserve, patterns));
            },
            "lowercase",
            (indexSettings, environment, name, settings) -> filter(name, LowerCaseFilter::new),
            "unique",
            (indexSettings, environment, name, settings) ->
                filter(name, RemoveDuplicatesTokenFilter::new)
        );
    }

    static Map<String, AnalysisProvider<TokenizerFactory>> tokenizers() {
        return Map.of(
            "uax_url_email",
            (indexSettings, environment, name, settings) ->
                TokenizerFactory.newFactory(name, UAX29URLEmailTokenizer::new)
        );
    }

    private static TokenFilterFactory filter(String name, UnaryOperator<TokenStream> wrap) {
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream tokenStream) {
                return wrap.apply(tokenStream);
            }
        };
    }
}
