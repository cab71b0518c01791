-- SabIA Labs' plans (seeds/sabia-labs-api.md §3 and §9): prices in BRL micro-units, monthly
-- request quotas (NULL = unlimited), rate limits in requests per second, features as shown.
ALTER TABLE plan ADD COLUMN cta text NOT NULL DEFAULT 'Começar agora';
ALTER TABLE plan ADD COLUMN cta_variant text NOT NULL DEFAULT 'primary';
ALTER TABLE plan ADD COLUMN main_feature text NOT NULL DEFAULT '';
ALTER TABLE plan ADD COLUMN sort_order integer NOT NULL DEFAULT 0;

-- billing cycle of an organization's plan
ALTER TABLE organization ADD COLUMN billing_cycle text NOT NULL DEFAULT 'monthly' CHECK (billing_cycle IN ('monthly', 'annual'));
ALTER TABLE organization ADD COLUMN plan_started_at timestamptz NOT NULL DEFAULT now();

INSERT INTO plan (code, name, price_brl_micros, annual_price_brl_micros, monthly_request_quota, rate_limit_rps, features, popular, cta, cta_variant, main_feature, sort_order) VALUES
('sandbox', 'Sandbox', 0, 0, NULL, 5,
 '[{"text": "Suporte por email", "included": true}, {"text": "Rate limit: 5 req/s", "included": true}, {"text": "Ambiente de desenvolvimento", "included": true}, {"text": "Sem custo adicional", "included": true}, {"text": "Produção", "included": false}]',
 false, 'Começar grátis', 'secondary', 'Requisições ilimitadas (dev)', 1),
('starter', 'Starter', 99000000, 990000000, 5000, 10,
 '[{"text": "Suporte por email", "included": true}, {"text": "Rate limit: 10 req/s", "included": true}, {"text": "Ambiente de produção", "included": true}, {"text": "R$ 0,015/req adicional", "included": true}, {"text": "SLA garantido", "included": false}]',
 true, 'Começar agora', 'primary', '5.000 requisições/mês', 2),
('pro', 'Pro', 499000000, 4990000000, 50000, 50,
 '[{"text": "Suporte prioritário", "included": true}, {"text": "Rate limit: 50 req/s", "included": true}, {"text": "Ambiente de produção", "included": true}, {"text": "R$ 0,010/req adicional", "included": true}, {"text": "SLA garantido", "included": true}]',
 false, 'Começar agora', 'primary', '50.000 requisições/mês', 3),
('enterprise', 'Enterprise', 1999000000, 19990000000, 500000, 200,
 '[{"text": "Suporte dedicado", "included": true}, {"text": "Rate limit: 200+ req/s", "included": true}, {"text": "Ambiente de produção", "included": true}, {"text": "Volume sob medida", "included": true}, {"text": "SLA garantido", "included": true}]',
 false, 'Falar com vendas', 'secondary', '500.000 requisições/mês', 4);
