//! Exact pricing: the catalog's USD prices, the operator's FX rate and the model's markup give
//! each request's `cost_upstream_usd_micros` and `cost_billed_brl_micros`.
//!
//! All amounts are integers in micro-units (1e-6 of the currency); prices per 1M tokens are
//! micro-USD per 1M tokens. The whole computation stays in 128-bit integers from the exact
//! product `tokens × price` and is rounded **once** per amount, half up (away from zero), to the
//! micro-unit: the BRL amount is computed from the unrounded USD amount, never from the rounded
//! one, so no rounding error is compounded.

/// Prices of one model, all in micro-units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    /// micro-USD per 1M input tokens.
    pub input_per_1m: i64,
    /// micro-USD per 1M output tokens.
    pub output_per_1m: i64,
    /// micro-USD per successful request (OCR, recognition).
    pub per_request: i64,
    /// micro-USD per generated image.
    pub per_image: i64,
    /// micro-USD per second of audio.
    pub per_audio_second: i64,
    /// micro-USD per 1M characters of text spoken (`/v1/audio/speech`).
    pub per_1m_chars: i64,
    /// micro-USD per search (`/v1/rerank`).
    pub per_search: i64,
    /// Markup multiplier in millionths (1.3 = 1_300_000).
    pub markup: i64,
    /// micro-USD per 1M input tokens read from the provider's prompt cache; `None`: the input
    /// price.
    pub cached_input_per_1m: Option<i64>,
    /// micro-USD per 1M input tokens written to the provider's prompt cache; `None`: the input
    /// price.
    pub cache_write_per_1m: Option<i64>,
}

/// What a request cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Upstream cost, micro-USD.
    pub usd_micros: i64,
    /// Billed amount, micro-BRL (cost × FX × markup).
    pub brl_micros: i64,
}

/// What was consumed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Consumed {
    /// Input tokens, all of them (cached reads and cache writes included).
    pub prompt_tokens: u64,
    /// Of `prompt_tokens`, read from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Of `prompt_tokens`, written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Images generated.
    pub images: u64,
    /// Audio transcribed, milliseconds.
    pub audio_ms: u64,
    /// Characters spoken (`/v1/audio/speech`).
    pub chars: u64,
    /// Searches (`/v1/rerank`).
    pub searches: u64,
    /// Per-request fee applies (a successful request).
    pub request: bool,
}

const MILLION: i128 = 1_000_000;

fn round_half_up(num: i128, den: i128) -> i128 {
    if num >= 0 {
        (num + den / 2) / den
    } else {
        -((-num + den / 2) / den)
    }
}

/// The cost of `c` at `price`, with `fx_micros` BRL per USD in millionths (5.4 = 5_400_000).
pub fn cost(price: &Price, c: &Consumed, fx_micros: i64) -> Cost {
    // the prompt's parts: cached reads and cache writes at their prices (the input price when
    // the model has none), the rest at the input price; parts are clamped to the whole so a
    // provider's inconsistent report can never bill more tokens than the prompt had
    let cached = c.cached_tokens.min(c.prompt_tokens);
    let written = c.cache_write_tokens.min(c.prompt_tokens - cached);
    let plain = c.prompt_tokens - cached - written;
    // micro-USD × 1e6 (exact)
    let exact: i128 = i128::from(plain) * i128::from(price.input_per_1m)
        + i128::from(cached) * i128::from(price.cached_input_per_1m.unwrap_or(price.input_per_1m))
        + i128::from(written) * i128::from(price.cache_write_per_1m.unwrap_or(price.input_per_1m))
        + i128::from(c.completion_tokens) * i128::from(price.output_per_1m)
        + i128::from(c.audio_ms) * i128::from(price.per_audio_second) * 1000
        + i128::from(c.chars) * i128::from(price.per_1m_chars)
        + i128::from(c.searches) * i128::from(price.per_search) * MILLION
        + (i128::from(c.images) * i128::from(price.per_image)
            + if c.request {
                i128::from(price.per_request)
            } else {
                0
            })
            * MILLION;
    let usd = round_half_up(exact, MILLION);
    let brl = round_half_up(
        exact * i128::from(fx_micros) * i128::from(price.markup),
        MILLION * MILLION * MILLION,
    );
    Cost {
        usd_micros: i64::try_from(usd).unwrap_or(i64::MAX),
        brl_micros: i64::try_from(brl).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: Price = Price {
        input_per_1m: 150_000,  // $0.15 / 1M
        output_per_1m: 600_000, // $0.60 / 1M
        per_request: 0,
        per_image: 0,
        per_audio_second: 0,
        per_1m_chars: 0,
        per_search: 0,
        markup: 1_300_000, // 1.3
        cached_input_per_1m: None,
        cache_write_per_1m: None,
    };

    #[test]
    fn cached_and_written_prompt_tokens_at_their_prices() {
        // Claude-like: $3 in, $0.30 cached read, $3.75 cache write, $15 out
        let p = Price {
            input_per_1m: 3_000_000,
            output_per_1m: 15_000_000,
            cached_input_per_1m: Some(300_000),
            cache_write_per_1m: Some(3_750_000),
            markup: 1_000_000,
            ..Default::default()
        };
        let c = Consumed {
            prompt_tokens: 1_000_000,
            cached_tokens: 600_000,
            cache_write_tokens: 100_000,
            completion_tokens: 0,
            ..Default::default()
        };
        // 300k × $3 + 600k × $0.30 + 100k × $3.75 = 0.9 + 0.18 + 0.375 = $1.455
        assert_eq!(cost(&p, &c, 1_000_000).usd_micros, 1_455_000);
        // no cached prices: every prompt token at the input price
        let plain = Price {
            cached_input_per_1m: None,
            cache_write_per_1m: None,
            ..p
        };
        assert_eq!(cost(&plain, &c, 1_000_000).usd_micros, 3_000_000);
        // an inconsistent report (parts larger than the whole) never bills more than the prompt
        let odd = Consumed {
            prompt_tokens: 10,
            cached_tokens: u64::MAX,
            cache_write_tokens: u64::MAX,
            ..Default::default()
        };
        // the 10 prompt tokens all at the cached price: 10 × $0.30/1M = 3 micro-USD
        assert_eq!(cost(&p, &odd, 1_000_000).usd_micros, 3);
        assert!(cost(&p, &odd, 1_000_000).usd_micros <= cost(&plain, &odd, 1_000_000).usd_micros);
    }

    fn tokens(p: u64, c: u64) -> Consumed {
        Consumed {
            prompt_tokens: p,
            completion_tokens: c,
            request: true,
            ..Default::default()
        }
    }

    #[test]
    fn tokens_at_catalog_prices() {
        // 1M in + 1M out = $0.75; × 5.40 × 1.3 = R$ 5.265
        assert_eq!(
            cost(&MINI, &tokens(1_000_000, 1_000_000), 5_400_000),
            Cost {
                usd_micros: 750_000,
                brl_micros: 5_265_000
            }
        );
        // 1000 in + 500 out = $0.00015 + $0.0003 = $0.00045 = 450 micro-USD; BRL 3159 micro
        assert_eq!(
            cost(&MINI, &tokens(1000, 500), 5_400_000),
            Cost {
                usd_micros: 450,
                brl_micros: 3159
            }
        );
    }

    #[test]
    fn rounding_is_half_up_once() {
        // 3 tokens × $0.15/1M = 0.45 micro-USD → 0; 4 tokens = 0.6 → 1; 10 tokens = 1.5 → 2
        let p = Price {
            input_per_1m: 150_000,
            markup: 1_000_000,
            ..Default::default()
        };
        assert_eq!(cost(&p, &tokens(3, 0), 1_000_000).usd_micros, 0);
        assert_eq!(cost(&p, &tokens(4, 0), 1_000_000).usd_micros, 1);
        assert_eq!(cost(&p, &tokens(10, 0), 1_000_000).usd_micros, 2);
        // BRL from the unrounded USD: 3 tokens = 0.45 µUSD × 5.4 = 2.43 → 2 (rounding USD first would give 0)
        assert_eq!(cost(&p, &tokens(3, 0), 5_400_000).brl_micros, 2);
    }

    #[test]
    fn per_request_and_per_image() {
        let ocr = Price {
            per_request: 15_000,
            markup: 1_000_000,
            ..Default::default()
        }; // $0.015
        assert_eq!(
            cost(&ocr, &tokens(0, 0), 5_000_000),
            Cost {
                usd_micros: 15_000,
                brl_micros: 75_000
            }
        );
        // a failed request pays no fee
        let failed = Consumed {
            request: false,
            ..Default::default()
        };
        assert_eq!(cost(&ocr, &failed, 5_000_000), Cost::default());
        let img = Price {
            per_image: 40_000,
            markup: 2_000_000,
            ..Default::default()
        }; // $0.04, markup 2
        let two = Consumed {
            images: 2,
            request: true,
            ..Default::default()
        };
        assert_eq!(
            cost(&img, &two, 5_400_000),
            Cost {
                usd_micros: 80_000,
                brl_micros: 864_000
            }
        );
    }

    #[test]
    fn per_audio_second_counts_milliseconds() {
        // whisper-1: $0.006 a minute = $0.0001 = 100 micro-USD a second
        let whisper = Price {
            per_audio_second: 100,
            markup: 1_500_000,
            ..Default::default()
        };
        let clip = |ms| Consumed {
            audio_ms: ms,
            request: true,
            ..Default::default()
        };
        // 12.345 s = 1234.5 micro-USD → 1235 (half up); BRL 1234.5 × 5.4 × 1.5 = 9999.45 → 9999
        assert_eq!(
            cost(&whisper, &clip(12_345), 5_400_000),
            Cost {
                usd_micros: 1235,
                brl_micros: 9999
            }
        );
        assert_eq!(cost(&whisper, &clip(0), 5_400_000), Cost::default());
    }

    #[test]
    fn huge_volumes_do_not_overflow() {
        let c = cost(
            &MINI,
            &tokens(u64::from(u32::MAX), u64::from(u32::MAX)),
            5_400_000,
        );
        assert!(c.usd_micros > 0 && c.brl_micros > c.usd_micros);
    }

    #[test]
    fn per_character_and_per_search() {
        // tts-1: $15 / 1M characters; 1234 characters = $0.01851 = 18510 micro-USD
        let tts = Price {
            per_1m_chars: 15_000_000,
            markup: 1_000_000,
            ..Default::default()
        };
        let spoken = Consumed {
            chars: 1234,
            request: true,
            ..Default::default()
        };
        assert_eq!(cost(&tts, &spoken, 5_000_000).usd_micros, 18_510);
        assert_eq!(cost(&tts, &spoken, 5_000_000).brl_micros, 92_550);
        // a failed request is priced by what it consumed: nothing spoken, nothing billed
        let none = Consumed::default();
        assert_eq!(cost(&tts, &none, 1_000_000), Cost::default());
        // rerank: $2 per 1000 searches = 2000 micro-USD a search; 3 searches
        let rerank = Price {
            per_search: 2_000,
            markup: 1_300_000,
            ..Default::default()
        };
        let c = Consumed {
            searches: 3,
            ..Default::default()
        };
        assert_eq!(
            cost(&rerank, &c, 5_400_000),
            Cost {
                usd_micros: 6_000,
                brl_micros: 42_120
            }
        );
    }
}
