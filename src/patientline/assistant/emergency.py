"""The emergency guard: a message that describes an emergency happening now gets the instruction to
call 120 or go to the emergency department before anything else (`Alarm.instruction`).

Recall comes first: a missed emergency is the one failure that cannot be undone, a false alarm costs a
sentence. So the guard fires on any alarming phrase (the signs in `data/emergency_signs.txt`) in a
clause of the message (or, for the signs marked `whole`, across the message) unless the message shows
it is not about an emergency now. Anywhere in the message, someone learning first aid ahead of need
("晕倒了应该怎么急救，想提前学一下"), a false alarm ("虚惊一场"), the person already in hospital or home
again ("已经送到急诊了"), someone in a show ("电视剧，里面…") or someone asked what to answer others
("我怎么回答"), a complaint about a blood draw, one tablet too many of an adult's own medicine, work pressing on
someone ("KPI压得我喘不过气"), talk taken as talk ("他就是发牢骚") or a first-aid training asking "what if" sets
every sign aside (`SETTLED`).
Then passages that tell of no emergency now are cut out and the rest is read (`_still_open`): a past
emergency told for its paperwork ("上个月突然昏迷…已经出院了，救护车费能报吗"), a story that ended well
("后来没事了"), a reading taken again and normal, a dated operation, a leaflet's signs up to its advice; what
the message says after them ("…他胸口压着痛 出冷汗") is read as ever.
Otherwise, in the order `_set_aside` asks:
- a negation right before it ("没有胸痛");
- in its clause: a topic rather than a person (fiction, study, teaching, paperwork: "我在写小说"; but
  "看电影的时候…突然" is a setting), a
  worry or a hypothetical ("怕哪天中风", unless the message ends saying it was done: "如果吃了一百片会怎样
  我已经吃了"); a figure of speech in its clause sets the whole clause aside ("累死了", "让我窒息");
- one past episode told in its clause sets it aside ("之前在工地有次突然眼前发黑"), unless the message says it is
  back ("现在又来了");
- words of this moment in its clause keep it ("突然", "救命");
- the past in its clause sets it aside ("去年心梗，放了支架"), and so does a chronic course in its clause
  ("老是认不出人") for a sign read in one clause;
- grave signs, and signs whose clause says they are severe ("剧烈", "冷汗"), are kept;
- the rest are set aside by a topic, a chronic course, a joke or reassurance ("玩得挺好", "止住了") anywhere
  in the message ("追剧哭到缺氧 快
  呼吸困难了"), or by something mild or an information question in their clause ("胸痛中心在几楼").
  A joke never sets aside a grave sign: "我不想活了哈哈" still gets the instruction.
Grave signs are those that no topic elsewhere in the message explains away ("叫不醒", "吃了一瓶安眠药",
"嘴唇发紫").

Text here is folded (`knowledge.search.text.fold`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from patientline.assistant.bayes import ComplementBayes
from patientline.knowledge.search.text import fold

SIGNS_FILE = Path(__file__).parent / "data" / "emergency_signs.txt"
MODEL_FILE = Path(__file__).parent / "data" / "emergency_model.json.gz"
EMERGENCY, CALM = "emergency", "calm"
LABELS = (EMERGENCY, CALM)
LEARNT = "learnt"  # the category of an alarm only the learnt opinion raised
MODEL_MARGIN = 1.0  # chosen on sets 16 and 17 before learning from them, and on ordinary messages (docs/ASSISTANT.md)
# above it the learnt opinion holds even against a topic, a joke or reassurance elsewhere in the message (only what
# SETTLED says still sets it aside): chosen on sets 1–55 and the ordinary callers with the model of sets 1–53, and
# on the misses of sets 56 and 57 (docs/ASSISTANT.md)
STRONG_MODEL_MARGIN = 3.0
_NO_NEGATION = "[^\\s不没无未非]"
GAP_TOKENS = {"<gap>": _NO_NEGATION + "{0,4}", "<longgap>": _NO_NEGATION + "{0,10}"}


@dataclass(frozen=True, slots=True)
class Sign:
    category: str
    pattern: re.Pattern[str]
    grave: bool
    whole: bool  # read across the whole message ("怀孕34周 突然肚子疼 下面出血"), not one clause


def read_signs(path: Path = SIGNS_FILE) -> list[Sign]:
    """`category<TAB>grave|sign[,whole]<TAB>pattern` lines, in the order they are tried."""
    signs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        category, kind, pattern = line.split("\t")
        weight, _, scope = kind.partition(",")
        if weight not in ("grave", "sign") or scope not in ("", "whole"):
            raise ValueError(f"{path.name}:{number}: the second column is 'grave' or 'sign', then optionally ',whole'")
        for token, gap in GAP_TOKENS.items():
            pattern = pattern.replace(token, gap)
        signs.append(Sign(category, re.compile(pattern), weight == "grave", scope == "whole"))
    return signs


SIGNS = read_signs()

NEGATION = re.compile(
    r"(?:没有|没|不是|并不|并没|倒没|也没|不算|无|未|否认|不会|不|唔系(?:真系)?|唔是)(?:想|要|在|再|出现|发生|什么|怎么|太)?$"
    r"|(?:\bno|\bnot|\bnever|\bwithout|\bdenies|n't)\s+(?:\w+\s+)?$"
    r"|\bno\s+(?:\w+\s+){1,3}n?or\s+$"  # no chest pain or shortness of breath
)
NEGATION_REACH = 24  # characters before a sign read for its negation
PAST = re.compile(
    r"去年|前年|上个?月|上周|上个?礼拜|上个?星期|上年(?!纪)|前天|上次|上回|那次|那回|以前|之前|曾经|小时候|时候?\S{0,6}过(?![去来])|年前|月前|周前|既往|病史|"
    r"前阵子|前段时间|前些天|救回来|救过来|住院|稳定|已经正常|正常上班|医院说是|"
    r"(?:已经|都|现在|早就?|病|治)好了|好多了|好转|已经好(?!几)|没事了|恢复|康复|出院|术后|放了?支架|后遗症|做过|得过|有过|过一次|未遂|(?:\d+|[一二三四五六七八九十几两]+)年了|"
    r"(?:心梗|中风|脑梗|脑出血|手术|车祸|烧伤|骨折|抢救|住院|溺水|中毒)(?:之)?后|试过(?![^。？！?!]{0,8}(?:没用|不管用|没效|不行|还|也不|没反应))|(?<!刚)(?:晕倒|昏倒|晕|昏迷|抽搐|抽|发作)过(?![去来])"
    r"|当时(?:就)?\S{0,3}(?:晕|昏|黑|倒|抽)\S{0,2}(?:几|一两|一|两)(?:秒|下|会儿?|分钟)"
    r"|住了\S{0,3}(?:天|周|星期|个月)|平稳|当年|旧年|老早|入咗院|出咗院|复康|好返"
    # a scar is what an old wound left; a diagnosis a doctor has given is about a visit already made
    r"|伤疤|疤痕|瘢痕|(?:烫|烧)伤?的?疤|留(?:了|下)?\S{0,3}疤|[祛去]疤|(?:医生|大夫)(?:说|讲|诊断)\S{0,6}(?:是|为)"
    r"|\bin (?:january|february|march|april|may|june|july|august|september|october|november|december)\b"
    r"|\blast (?:year|month|week)\b|\b(?:years?|months?|weeks?) ago\b|\brecovered\b|\bdoing (?:well|fine|ok)\b"
    r"|\bhistory of\b|\bever had\b|\bhad any\b|\bin the (?:past|last) \w+ (?:years?|months?)\b"
    r"|\blast (?:summer|winter|spring|autumn|fall)\b"
    r"|\bas a (?:kid|child|baby|teen(?:ager)?)\b|\bin (?:19|20)\d\d\b"
    r"|入院时"
    r"|(?:吃|用|服)了(?:\d+|[一二三四五六七八九十几两好]+)(?:多)?年|(?:昨天|昨晚|前几天|那天)\S{0,8}有人"
)
CHRONIC = re.compile(
    r"(?:歇|休息|停下来?)\S{0,4}(?:就好|就缓|缓过来)|缓过来了|老是|每次(?:发作|犯病|犯)|已经\S{0,4}(?:天|星期|礼拜|周|月|年)|好几年|好多年|多年|老毛病|痴呆|打呼噜|打鼾|呼吸暂停|经常|偶尔|有时候?|时不时|一直有点|长期|反复|慢性|几个月了|体检"
    r"|总(?:是)?(?:说|觉得|会)|平时(?:还好|还行|没事|正常|挺好)|(?:冬天|夏天|换季|天冷|每年)\S{0,4}(?:会|就)"
    r"|\bon and off\b|\bfor (?:a few |several |many |some )?(?:months|weeks|years)\b"
    r"|\bsometimes\b|\boccasional(?:ly)?\b"
)
# Words that the moment has passed, the person is well, tests found nothing or the harm is small, anywhere in the
# message (not for grave signs).
REASSURED = re.compile(
    r"玩得\S{0,2}(?:好|开心)|吃饭\S{0,2}正常|吃得\S{0,2}(?:香|好)|能吃能玩|精神(?:挺|很|还)好|"
    r"已经拉出来|已经排出|排出来了|止住了|就止住|已经止住|不流了|结痂|没起泡|继续玩|(?:还|一直|仲)(?:在|喺度?)玩|还在笑|哭了\S{0,4}(?:就|又)(?:笑|玩)(?:了|起来)|呼吸正常|"
    r"(?:已经|很|情况|病情)稳定|稳定了|不怎么(?:疼|痛)了|(?:已经|也)不(?:太)?(?:疼|痛)了|抢救过来|救过来了|没什么事|应该没事|没事吧|医生\S{0,4}说\S{0,2}没事|查\S{0,6}没事|"
    r"活蹦乱跳|咳出来了|一切正常|完全正常|现在(?:已经)?醒了|[没冇]晕|不晕|不想?吐|[没冇](?:吐|呕)|好好(?:地|的)(?:在)?玩|肌肉拉伤|岔气|"
    r"没(?:有)?(?:别的|其他|其它)(?:的)?(?:不舒服|不适|症状|异常)|(?:手指|脚趾|手|脚|腿|胳膊)(?:都|还|也)?能(?:动|活动|弯)|"
    r"(?:黄豆|绿豆|米粒|芝麻|指甲盖|硬币)(?:一样|那么|大小)?大|"
    r"(?:彩超|心电图|ct|核磁|b超|造影|检查|化验)[^。？！?!]{0,8}(?:都)?(?:正常|没(?:有)?(?:什么)?问题)"
    r"|[几一两三]+秒(?:钟)?(?:就|后就)(?:好|过去|没|缓|醒|恢复)|不起泡|没有起(?:水)?泡"
    # a stool made black by iron or bismuth taken ("吃了铁剂以后大便变黑了")
    r"|(?:铁剂|补铁|铁片|亚铁|铋)[^。？！?!]{0,16}(?:大便|粪便|便便)\S{0,4}黑"
    r"|(?:大便|粪便|便便)\S{0,4}黑[^。？！?!]{0,16}(?:铁剂|补铁|铁片|亚铁|铋)"
    r"|\bacting (?:normal(?:ly)?|fine|like (?:him|her|them)self)\b|\bplaying (?:again|normally)\b"
    # better again after treatment ("补铁后好多了"), the mild fever a vaccination brings
    r"|(?<!吃了)(?<!喝了)(?<!吞了)(?<!服了)(?<!会)好多了"
    r"|\bmild fever after (?:the |his |her |its |their )?(?:shots|jabs|vaccin\w*|immuni[sz]ations?)\b"
    # fine now, in Cantonese too ("而家冇事喇"); a finger that still moves ("仲郁得"); nothing swallowed after all;
    # running and jumping again; eating and drinking as ever; a blister as small as a burn leaves on a fingertip
    r"|(?:而家|现在|宜家)(?:已经)?(?:冇|没)(?:乜|什么)?事(?:喇|啦|咯|了(?![吗么嘛吧]))|(?:仲|都|还)(?:郁|动)得"
    r"|(?<!有)(?:没|冇)(?:有)?吞(?:下去|进去|到)?(?![^。？！?!]{0,3}(?:东西|饭|口水))|又跑又跳|能跑能跳|又蹦又跳|蹦蹦跳跳"
    r"|还吃还喝|能吃能喝|照常吃喝|起了?(?:个|一个)?小(?:水)?泡|医生\S{0,4}说\S{0,6}(?:可以|先)观察"
    # a skin only reddened ("有点红 不疼"; a burn gone white is painless, so "不疼" alone is no comfort)
    r"|只是有点红|有点红[\s，,]{0,2}不(?:疼|痛)"
    # someone shaken by what they saw, asking for the mind's clinic ("看到一个车祸…睡不着 有心理科吗")
    r"|(?:挂|看|有)\S{0,3}心理(?:科|门诊|咨询)|医生\S{0,4}(?:话|讲)\S{0,2}(?:冇|没)事"
    # walking as usual, a mouthful taken out again, sleep that put a drinker right, breathing as usual
    r"|走路(?:没问题|正常)|能走路|(?:已经|马上|当时|立刻)(?:就)?(?:抠|吐|拿|取|掏)出来了|(?:跑着|又在|在跑)玩|睡(?:了)?一觉(?:就)?好(?:了|多了)|(?:瞓醒|睡醒)\S{0,3}(?:已经)?(?:冇事|没事)"
    r"|喘气正常|稳住了|耍得\S{0,2}(?:好|欢)|吃饭\S{0,2}香|呼吸(?:很|挺)?(?:均匀|平稳)"
)
MILD = re.compile(
    r"少少|血丝|酸痛|胸肌|肌肉(?:酸|痛|疼)|练\S{0,2}(?:狠|猛)|轻微|有点(?:胸闷|闷)|一点|少量|点点|稍微|一下|小(?:水泡|口子|伤口|红点)|细细粒|卧推|练胸|按着(?:才)?(?:疼|痛)"
)
INFORMATION = re.compile(
    r"怎么预防|如何预防|有哪些|什么症状|症状是|是什么|是啥|科普|中心|几楼|在哪|怎么走|报告|证明|保险|报销|预约|挂号|号源|出诊|门诊时间|"
    r"安全吗|安不安全|(?:比较|更|才|先)安全|可以\S{0,12}(?:吗|嘛|(?<![什怎])么)|坐诊|专家号|探视|陪护|热线|电话|能吃|吃什么|饮食|注意什么|注意事项|护理|筛查|疫苗|康复科|烧伤科|门诊|能不能|能否|是不是一定|"
    r"一定要|检查|医生还在|开药|复查|(?:挂|看)(?:什么|哪个|哪一个|哪一|哪|啥)(?:个)?科|哪个科|哪种好|药膏|重疾|医疗险|意外险|商业险|押金|医保|(?:医疗费|医药费)\S{0,2}(?:能|可以|怎么|谁|找|报)|赔偿吗|多久(?:才)?(?:能|可以)(?:进|回|住|开窗|入住)"
    r"|\bwhich (?:department|clinic|doctor)\b|\bwhat (?:department|clinic)\b|\bwhere (?:is|are|do|can)\b"
    r"|\bhow (?:do|can|much)\b"
    r"|\brisk\b|\bprevent\w*|\binsurance\b|\bappointment\b|\bcheck-?up\b|\bvisiting hours\b|\bsymptoms of\b"
    r"|\bwarning signs\b|\bsigns of\b|\bfor the future\b"
    r"|\bfuture reference\b|\bcent(?:re|er)\b|\bopen on\b|\bjust asking\b"
)
# "Why" asks about a topic ("为什么会突然心梗"), unless it asks why someone is so now ("为什么我爸突然叫不醒").
_WHY = r"为什么(?![^\s，,。？！?!会]{0,6}?(?:突然|一直|还在|现在|又|刚才|刚刚))"
# A worry or a question about something that may happen: set aside only in the sign's own clause.
WORRY = re.compile(
    # (not "以后不用再担心我", a farewell); whether a food will poison ("喝了隔夜茶会中毒吗"), not a medicine or a child
    # how long before calling ("抽搐多久要打120"); whether a reading counts as high ("血压190/110系咪算好高")
    r"^(?!.*(?:还没停|没停|不停|还在|已经|分钟了|抽了)).*?"
    r"(?:多久|多长时间|几分钟)\S{0,3}(?:需要|要|就要|才要|该|应该|就得)(?:打120|叫救护车|叫120|去急诊|送医院|送医)"
    r"|\d\S{0,4}(?:算不算|是不是算|系咪算|算唔算|这算|算)(?:是)?(?:很|好|太|偏)?(?:高|低)|"
    r"^(?!.*(?:误|孩子|宝宝|小孩|一整|整瓶|一瓶|一盒|一把|全部|所有|好多|很多|[十几\d]+[片颗粒]|药|蘑菇|菌|看不清|吐|晕|抽|叫不|喘|昏|麻|现在|甲醇"
    r"|敌敌畏|百草枯|老鼠药))"
    r".*?会(?:不会)?\S{0,2}中毒[吗嘛么]$|怕|(?<!不用)(?<!不用再)(?<!唔使)(?<!唔使再)(?<!不必)(?<!不必再)担心|"
    r"会不会|吃多了会|包括有没有想过|(?:时|的时候|先)(?:舌下)?含(?!服?(?:了|过|完|后))"
    r"|万一|如果|假如|要是|\bwhat if\b|\bif (?:someone|somebody|anyone|a person)\b"
    r"|以为(?![^。？！?!]{0,12}(?:结果|没想到|谁知))|\bworried\b|\bafraid\b|\bin case\b|\bthought (?:he|she|it|i) was\b"
    r"|\bwhy\b(?!.{0,30}\b(?:suddenly|right now|still)\b)|" + _WHY
)
# A hypothetical that the end of the message says was done ("如果吃了一百片会怎样 我已经吃了"): no worry.
ADMITTED = re.compile(
    r"(?:我|他|她)\S{0,2}(?:已经|刚刚?|刚才)(?:都)?(?:吃|吞|喝|服|割|划)(?:了|下去了?|完了)[\s。！!.…]*$"
    r"|\b(?:i|he|she) (?:already|just) (?:did|took (?:it|them|all of (?:it|them)))\W*$"
)
# A joke or a show, anywhere in the message, is not an emergency ("我快休克了，开玩笑的").
JOKING = re.compile(
    r"开(?:个)?玩笑|哈哈|笑死|追剧|太虐|原地(?:爆炸|去世)|(?<![口缝线皮肉])裂开了|人麻了|社死|心态崩|离谱|窒息操作|这波操作"
    r"|😂|🤣|xswl|yyds|\blol\b|\blmao\b|\bjk\b|\bjust kidding\b|\bkilling me\b|\bdie of boredom\b"
    # a head too full of study or work ("背了一整天书，脑子要炸了"), not a head that hurts
    r"|(?:背|学|复习|考|作业|刷题|看书|读书|加班|开会|上课|工作|代码)[^。？！?!]{0,12}(?:脑子|脑袋|脑壳)(?:都)?(?:要|快)(?:要)?炸"
    r"(?![^。？！?!]{0,10}(?:疼|痛|吐|晕))"
)
NOT_JOKING = re.compile(r"(?:不是|没有?|不)\S{0,3}开(?:个)?玩笑")
_FICTION = r"(?:剧|电影|纪录片|动画片?|小说)"
# Anywhere in the message, these set aside even grave signs: someone learning or studying, a false alarm
# (something coughed up already), the person already at a hospital or home again, or a sick animal (a vet).
SETTLED = re.compile(
    r"提前学|想(?:提前)?学(?:一下|习)|学一下|虚惊一场|以为\S{0,10}原来|^(?!.*(?:突然|刚才|刚刚|正在|救命)).*?(?:医学生|医科生|护理专业|护士学生|护生|护理学生)|咳出来了|咳(?:了)?\S{0,2}下就好了|"
    r"(?:已经|已)(?:被)?送(?:到|进|去)?(?:了)?\S{0,6}(?:急诊|医院)"
    r"|\b(?:want(?:ed)?|like|love|need|hoping) to learn\b|\blearn\b.{0,30}\bbefore\b"
    r"|\b(?:asking|practi[sc]ing|studying|preparing|notes|questions?) for (?:a|my|the|our) (?:\w+\s+)?"
    r"(?:class|course|workshop|lesson|assignment)\b"
    r"|\basking for the future\b|\bfor future reference\b"
    r"|\bfalse alarm\b|\bcoughed it (?:out|up)\b|\bplaying happily\b|\b(?:med(?:ical)?|nursing) students?\b"
    r"|^(?!.*(?:(?:医生|护士|大夫)\S{0,4}(?:怎么联系|联系不上|找不到|叫不来)|(?:护士站|值班室)\S{0,2}没(?:有)?人|按铃\S{0,4}没人|突然|刚才|刚刚))"
    r".*?(?:[在喺]\S{0,8}住院(?!部|楼|处|手续)|[在喺]\S{0,6}(?:icu|ccu|nicu|重症监护室?|监护室)(?![^。？！?!]{0,3}(?:外|门口|等候)))|住紧|已经看过急诊|(?:已经|当时|那天)(?:就)?(?:在|去|到|来)(?:了)?\S{0,3}(?:急诊|医院)\S{0,4}(?:查|看|检查)过(?![^。？！?!]{0,20}(?:又|还是|但|可是|突然))|已经(?:在\S{0,6})?(?:拍(?:过|了)?片|做(?:完|了|过)\S{0,2}(?:ct|核磁|检查|b超|彩超))(?![^。？！?!]{0,20}(?:又|还是|但|可是|突然))"
    r"|已经\S{0,8}打(?:了|过)\S{0,6}(?:针|疫苗)(?![^。？！?!]{0,20}(?:又|还是|但|可是|越来越|更))"
    r"|(?:当场|当时|马上|很快|立刻)(?:就)?(?:(?:缓|醒|好)过来|醒)了(?![^。？！?!]{0,20}(?:又|还是|但|可是))|有人(?:在)?演(?!出|讲|唱|奏)"
    # someone in a show ("看了个电视剧，里面老头心梗倒地"), or someone asked what to answer others ("家长问…我怎么回答")
    r"|" + _FICTION + r"[,\s]*(?:里面|里头)|^(?!.*(?:突然|刚才|刚刚|现在|正在)).*?" + _FICTION + r"里(?=那|的|有)"
    r"|^(?!.*(?:突然|正在|现在|刚才|刚刚)).*?(?:怎么|如何)(?:回答|回复|答复)"
    r"|(?:其实|原来|只不过)(?:就|只)?是\S{0,2}(?:怕针|晕针|晕血|怕血|怕打针|(?:太)?紧张|吓的|吓着了)"
    r"|(?:(?:绑|戴|量|测)错了|(?:躺|坐|歇|休息)(?:了|下|一会儿?|一下)\S{0,6}就(?:好|醒|缓过来)了(?![吗么嘛])|口头禅|流行语|网络用语|凡尔赛"
    r"|(?:吃|喝|含)(?:了|点|颗|块|口)\S{0,4}(?:糖|巧克力|饼干|葡萄糖|糖水)\S{0,3}就(?:好|醒|缓过来)了(?![吗么嘛吧]))"
    r"(?![^。？！?!]{0,20}(?:又|还是|但|可是|结果|现在))"
    r"|(?<![要该够能])(?:一个?(?:多)?月|半个?月|一周|一个?(?:星期|礼拜)|几天|[2-9]天|\d{2,}天|[两三四五六七八九十几]+天)(?:才)?"
    r"(?:吃|喝|用)完(?![^。？！?!]{0,20}(?:但|可是|一次|一下子|一口气|全|都))"
    r"|(?:面瘫|中风|脑梗|脑出血|脑溢血|偏瘫|手术|车祸|外伤)(?:后)?(?:留下|落下|遗留)\S{0,3}的"
    r"(?![^。？！?!]{0,30}(?:又|突然|加重|但|可是|这次))"
    r"|(?:整理|做|写|编|制作|准备)\S{0,8}(?:应急|急救)(?:手册|卡片?)|考试题|考题"
    r"|打(?:完|了)\S{0,8}疫苗\S{0,6}(?:手臂|胳膊|肩膀|针眼)\S{0,3}(?:很|有点|好)?(?:疼|痛|酸|肿)(?![^。？！?!]{0,30}(?:喘|呼吸|晕|风团|疹|嘴唇|喉咙))"
    r"|科普(?:资料|材料|视频|文章|读物)|(?:救护车|急救车|120)\S{0,4}(?:接走|拉走|送走)了(?![^。？！?!]{0,30}(?:又|也|还|现在|突然|但|可是))|当时(?:应该|该)(?:怎么|咋)(?:做|办)|以后遇到|下次遇到|(?:要|准备|打算|快)(?:开始)?学游泳"
    # talk taken as talk ("他就是发牢骚"), a first-aid training someone organises ("厂里组织急救培训，如果…")
    r"|(?:(?:就是|只是|不过是|都是|纯粹是?)\S{0,2}(?:发牢骚|说气话|气话|随口(?:一说|说说))|(?:骂|吐槽|发泄)完了\S{0,4}(?:睡觉|睡了|舒服多了|好多了|爽了))"
    r"(?![^。？！?!]{0,30}(?:但|可是|现在|这次|又|找不到|联系不上|不见))"
    r"|^(?!.*(?:突然|刚才|刚刚|现在|正在|真的|结果|救命)).*?(?:急救|安全|消防|心肺复苏)(?:培训|课|演练|讲座)"
    r"[^。？！?!]{0,40}(?:如果|假如|万一|要是|假设)"
    # asking ahead of need ("误喝了怎么办 想提前了解"); someone pretending or posing ("装晕倒摆拍"); a voice lost to
    # singing or shouting; a walker's blisters; a numb tongue while a dental anaesthetic wears off; an allergy test
    # asked for; a stroke or an illness well recovered from
    r"|^(?!.*(?:突然|正在|刚才|刚刚|救命|已经|现在)).*?(?:想|先)?提前(?:了解|问问?)"
    r"|^(?!.*(?:以为|结果|真的|不像|没想到)).*?(?:摆拍|(?:假装|装作|装成|(?<![安包服伪组改西])装)(?:晕|昏|死|病|抽))"
    r"|^(?!.*(?:突然|嘴歪|脸歪|没力|麻|喘|呼吸|肿|吞|咽)).*?(?:唱|喊|吼|嚎|讲课|讲了|说了)[^。？！?!]{0,12}(?:嗓子|喉咙|声音)\S{0,2}(?:都)?(?:哑|嘶哑)"
    r"|(?:徒步|走路|走了|爬山|跑步|暴走|新鞋|鞋子?|艾灸|拔罐|火罐|刮痧)[^。？！?!烫烧]{0,12}水泡|^(?!.*(?:喘|呼吸|晕|嘴唇|面|脸)).*?(?:拔罐|火罐|刮痧)[^。？！?!]{0,12}(?:紫|黑|红)"
    r"|^(?!.*(?:喘|呼吸|肿|吞|血|晕|抽)).*?麻药\S{0,2}(?:还)?(?:没|未)(?:过|退|散|消)"
    r"|^(?!.*(?:突然|正在|刚才|刚刚|救命|又|喘|呼吸|憋)).*?(?:做|查|测)\S{0,4}过敏原"
    r"|^(?!.*(?:这次|这回|今天|刚才|刚刚|又)).*?(?:恢复|康复)得?(?:不错|很好|挺好|良好|还行|还可以|差不多)(?!.*突然)"
    # steady on treatment and asking for the next visit ("以前抑郁…现在吃药稳定了 想约复诊")
    r"|^(?!.*(?:这次|这回|今天|昨天|昨晚|刚才|刚刚|又|突然|但|可是|最近|联系不上|找不到|不见|(?:吃|吞)了))(?=.*(?:吃药|治疗|控制)(?:后|以后)?\S{0,2}(?:很|挺|比较)?稳定(?:了|下来))(?=.*(?:复诊|复查|挂号|预约|开药|续方|约))"
    # an event dated "last month" or a stroke of years ago, with nothing of this moment
    r"|^(?!.*(?:又|这次|这回|今天|刚才|刚刚|突然|还在|越来越|现在(?!\S{0,2}(?:好|恢复|没事|能|复查|复诊)))).*?(?:(?:上个?月|去年|前年|上周|上个?(?:礼拜|星期)|(?:几|[一二两三四五六七八九十]|\d+)(?:年|个月)前)的事"
    r"|(?:中风|脑梗|脑出血|偏瘫)\S{0,3}(?:[一二两三四五六七八九十几]+|\d+)(?:年|个月))"
    # a farewell for a graduation or a move; a line quoted from lyrics or a script; a fright explained ("原来是…")
    r"|^(?!.*(?:不想活|自杀|遗书|活着|结束|药|跳|刀|绳|烧炭|再也|联系不上|打不通|关机|楼顶|天台|世界|永别|最后|下辈子))(?=.*(?:告别|照顾好自己|(?:东西|家具)\S{0,4}(?:都)?(?:送|寄|分)(?:人|给)))(?=.*(?:毕业|各奔东西|离职|退休|搬家|出国|移民|转学|调走|拉黑|分手))"
    r"|^(?!.*(?:然后|现在|刚才|刚刚|已经|真的)).*?(?:(?:歌词|剧本|台词|小说)(?:里|里面|中)(?:有|写|说)|(?:首歌|歌里)\S{0,2}(?:唱|写))"
    # a child back to normal after a scare at a lesson; a vaccination course under way; a doctor already seen
    r"|^(?!.*(?:又|突然|刚才|刚刚|但|可是|现在还)).*?(?:之后|后来)\S{0,3}正常(?:上课|上完课|玩|吃饭|上学)"
    r"|^(?!.*(?:喘|呼吸|风团|疹|嘴唇|喉咙|晕|抽|肿)).*?疫苗(?:的)?第[二三四五2-5]针(?=[^。？！?!]{0,12}(?:能|可以|什么时候|几点|哪天|在哪)\S{0,4}打)"
    r"|已经看过\S{0,3}科了?(?![^。？！?!]{0,20}(?:又|还是|但|可是|突然|现在))"
    r"|(?:原来|后来才知道|才知道)(?:是|系|在)\S{0,8}(?:角色|游戏|演|开玩笑|玩笑|假的|恶作剧|整蛊|上班|上学|营业|工作|瑜伽|睡觉|午睡|锻炼|拉伸|做操|打坐|冥想|健身|托(?![儿管运付])|熬夜|熬的|累的|饿的|困的)(?![^。？！?!]{0,20}(?:但|可是|又|还是|结果))"
    r"|宠物医院|动物医院|兽医|猪瘟|鸡瘟|养殖场|几头(?:猪|牛|羊)|\bvet\b"
    # work or school pressing on someone, told as breathlessness ("喘不过气来了，KPI压得我", "期末周真的喘不过气"),
    # with no body complaint
    r"|^(?!.*(?:胸|疼|痛|汗|晕|紫|吐|哮喘|突然))"
    r".*?(?:(?:kpi|业绩|指标|房贷|车贷|学业|作业|考试|工作|压力|老板|领导|ddl|deadline)\S{0,6}压得(?:我|人)|喘不(?:过|上)气(?:了|来)?[^。？！?!]{0,12}(?:房贷|车贷|补课费|学费|kpi|业绩|指标|账单)"
    r"|(?:期末|考试|考研|kpi|ddl|deadline|加班|工作|学业)(?:周|季|月|压力)?(?:真的|简直|实在|都)?(?:快|要)?喘不过气)"
    # a complaint about a needle (a blood draw, an injection, a drip): its bruise and bleeding are the complaint
    r"|(?:抽血|采血|扎针|打针|输液|打点滴|留置针)[^。？！?!]{0,40}(?:投诉|差评|要个说法)"
    r"|(?:投诉|差评)[^。？！?!]{0,40}(?:抽血|采血|扎针|打针|输液|打点滴|留置针)"
    # one tablet too many of one's own medicine, for an adult ("多吃了一片降压药"), unless it brought symptoms
    r"|^(?!.*(?:孩子|宝宝|小孩|婴儿|幼儿|儿子|女儿|娃|误食|误服|一把|一瓶|一盒|一板|安眠药|安定|地高辛|胰岛素))"
    r".*?(?:多(?:吃|服)了一(?:片|粒|颗)|(?:吃|服)了两(?:次|遍)|(?:吃|服)重(?:了|复)|(?:本来|原本)(?:应该|该|只)?(?:吃|服)一(?:片|粒|颗))"
    r"(?![^。？！?!]{0,30}(?:但|可是|现在\S{0,2}(?:晕|喘|抽|吐|胸|心慌|叫不)|突然))"
    # an exam point, a message sent to the wrong chat, with nothing of this moment
    r"|^(?!.*(?:真的|现在|正在|突然|刚才|刚刚|救命)).*?(?:考试要考|考点|(?:不好意思|抱歉|sorry)\S{0,3}发错(?:了|群|人)|发错群|发错人)"
    # the person already in the emergency department, being treated ("已经在急诊了 正在吸氧 缴费在哪")
    r"|^(?!.*(?:但|可是|突然|又|现在|刚才|刚刚|叫不醒|没人|没有人|不管|还没|排队|叫不到|找不到|等了))(?=.*(?:已经|我|人)(?:在|到)(?:了)?\S{0,4}(?:急诊|抢救室|输液室|留观室))"
    r"(?=.*(?:正在|在)(?:吸氧|抢救|输液|打点滴|做手术|手术|处理|缝|观察))"
    # a threat of dying said in a quarrel, then the person seen at an ordinary pastime ("结果跑去买奶茶了")
    r"|^(?!.*(?:药|片|粒|吞|喝了|割|划|血|烧炭|又|突然|天台|楼顶|桥|江边|河边|联系不上|找不到|不见))"
    r"(?=.*(?:跳楼|跳河|去死|不活了|不想活|自杀))"
    r"(?=.*(?:结果|现在|后来|然后)\S{0,4}(?:跑去|去|在)\S{0,4}(?:买|喝|吃|打|玩|逛|追)(?:奶茶|咖啡|游戏|火锅|饭|街|剧))"
    # a training asked for or a plan written ahead of need; a sleep study for snoring; stress told as a weight on
    # the chest, asking for counselling
    r"|^(?!.*(?:突然|刚才|刚刚|现在|正在|真的|救命|快))"
    r".*?(?:(?:来|给|帮)(?:我们|大家|员工|同事)\S{0,2}(?:培训|讲课|上课|讲讲)|应急预案|安全教育|睡眠(?:呼吸)?监测|睡眠呼吸暂停|多导睡眠|标准答案|参考答案|答案是(?:啥|什么))"
    r"|^(?!.*(?:真的|刚才|刚刚|现在)).*?怎么演(?:才|得)?像"
    r"|^(?!.*(?:疼|痛|汗|晕|喘|紫|麻|突然|刚才|现在))(?=.*压力)(?=.*心理(?:科|门诊|咨询))"
    # a death already certified (the mortuary, the funeral), a Bell's palsy under acupuncture, a letter to one's
    # past self, "actually she is fine now", a complaint about a visit that ended well
    r"|^(?!.*(?:突然|刚才|刚刚|正在|救命|还有|也))(?=.*(?:太平间|殡仪馆|后事|死亡证明|火化))"
    r"|^(?!.*(?:突然|刚才|刚刚|今天|这次|又|没力|无力|麻|说不|讲不)).*?面瘫[^。？！?!]{0,12}(?:针灸|扎针|扎了)"
    r"|(?:告别信|一封信)[^。？！?!]{0,10}给(?:过去|未来|从前|以前|十年后)的自己"
    r"|^(?!.*(?:活够|不想活|想死|拖累|自杀|跳|药)).*?其实\S{0,3}(?:现在)?(?:好好的|挺好的|没事)(?![^。？！?!]{0,20}(?:但|可是|突然|又))"
    r"|^(?!.*(?:现在又|突然|刚才|刚刚|还在|正在|叫不醒))(?=.*(?:投诉|要个说法|差评|态度\S{0,2}差))(?=.*(?:人没事了|放了支架|支架放了|出院了|现在好了|已经好了))"
    # someone who has not taken it yet, with no other sign of intent ("客人问安眠药能不能喝酒 他还没吃")
    r"|^(?!.*(?:不想活|想死|自杀|跳|刀|天台|楼顶|遗书|再见|告别|结束|一瓶|一盒|一把|全部|所有|攒)).*?(?:他|她|我|客人|病人)还没(?:有)?(?:吃|喝|吞|服)"
    r"(?![^。？！?!]{0,20}(?:但|可是|已经|又|准备|要))"
    # a faint at the sight of a needle or blood, motion sickness, a sore throat called tonsillitis
    r"|^(?!.*(?:又|还是|但|可是|叫不醒|抽|现在还|血|磕|摔|撞)).*?(?:晕针|晕血)"
    r"|^(?!.*(?:叫不醒|没反应|抽|倒地|不动|紫|突然倒|胸|撕|血|喘|呼吸|痛|疼|后来|然后)).*?晕(?:车|船|机)(?!场)"
    r"|^(?!.*(?:喘|呼吸|流口水|口水流|说不出|说不了|咽不下|吞不下|张不开|紫|憋)).*?(?:扁桃体(?:发炎|炎|肿)|咽炎)"
    # an allergy someone wants a kit kept for
    r"|^(?!.*(?:吃了|吃到|吃下|吃完|误吃|误食|喝了|咬|吞|舔|尝|蜇|叮|打完|输上|输了|打了|刚才|刚刚|突然|现在|正在|肿|喘"
    r"|呼吸|疹|痒|晕|倒|叫不|紫|抽|嗓子|喉咙|说不出|意识|(?<!过敏性)休克|血压|胸闷|虚汗|没反应|找不到|在哪))"
    r"(?=.*对\S{0,6}过敏)(?=.*(?:(?:想|要|需要|应该|怎么|去哪|可以|希望)\S{0,6}备|急救包|肾上腺素笔|\bepipen\b))"
)
# Not about anyone's body now: fiction, study, teaching, paperwork; these set aside even grave signs.
# A topic's word followed by "while", "during" or "suddenly" names when something happened, not what the message is
# about ("看电影的时候我爸突然胸口剧痛", "考试中突然抽搐").
_A_SETTING = (
    r"(?!\S{0,4}?(?:的时候|(?<!什么)(?<!啥)时候|期间|过程中|中途"
    r"|(?:课?上|中|时)(?=[^\s说讲]{0,3}(?:突然|忽然|一下子|有人|有个|一个|一位|同学|同事))))"
)
TOPIC = re.compile(
    r"(?:小说|(?:里面|里|中)的?(?:人物|角色)|写作(?!业)|电视剧|电影|剧里|新闻|论文|考试(?!前|之前)|题目|讲座|培训|课程|科普|知识|区别|怎么引起|是怎么|一般(?:是|要|会)|流程|"
    r"想(?:先|提前|预先)?了解|了解一下|学学|学习|病历|复印|保险公司|理赔|住几天|会不会影响|只是问问|预防|防(?:止|范|治)|热线|多少钱|费用|"
    r"复诊时间|出庭|作证|宣传|资料|演练|安全课|心理课|班会|讲讲|要讲|鉴定|材料|时间窗|(?:多少|几|多长时间|多久)(?:分钟|小时)?(?:内|之内|以内)\S{0,8}(?:有用|有效|来得及|管用)|指南|发病率|死亡率|统计|"
    r"假设|一旦|提前问|想学|急救箱|怎么判断|怎么区分|一回事|" + _WHY + r"|"
    r"黄金|抢救时间|人数|每年|课题|课件|视频(?!电话|通话|聊天)|在写|老师(?:讲|上课|布置|出的)|教材|(?<!告诉)(?<!给)(?<!送)别人|投诉|误诊|要个说法|没事了|(?<!还)(?<!本来)(?<!原本)好好的(?![^\s，,。]{0,3}(?:突然|忽然|一下子|就))|已经(?:完全)?好(?!几)|"
    r"歌词|情节|(?<!什么)角色(?!都)|恐怖片|鬼片|干预门诊|干预热线|(?:自杀|危机)干预|预防自杀|心理援助|鉴别|话剧|排练|要我演|电视里|主角|一部片|"
    r"能看(?:狗|猫)|给(?:狗|猫)看病|过家家|说明书|电视上|演(?:一个|个)?(?:溺水|晕倒|病人|伤员)|转发|前兆|是真的吗|快过期|在哪开|能不能开|量表|评估|心理老师|噩梦|做梦|梦到|梦见|这歌|首歌|(?<!当)(?<!当成)(?<!当作)(?<!当做)维生素|(?<!当)(?<!当成)(?<!当作)(?<!当做)钙片|软糖|益生菌|一堂|上课|的课|识别|"
    r"康复科|康复训练|做康复|做训练|送人头|(?:标语|海报|宣传栏)\S{0,3}(?:写着|上写|说)|流行病学|主题是|拍\S{0,4}戏(?!服)|戏份|(?:急救|心肺复苏)课|外放|发功|(?:说|讲|宣传|号称|声称)\S{0,6}(?:能|可以|可)(?:治|医)|(?:收|接)(?:多少|几)个|(?:要|得|应该)先\S{0,3}(?:扎手指|放血)|放血(?:疗法|能治|有用)|(?<![请快])教(?:我们|大家|员工|同事|学生)?(?:怎么|如何)(?![^\s，,。]{0,12}(?:突然|忽然))|(?:我们|大家|员工|同事|职工|司机|学生)(?:都)?(?:要|得|去)?学\S{0,12}急救|"
    r"半年|(?<!在)护理院|鼻饲|指引|导诊|的病人|病人(?:应该|一般|能|可以)|报警器|有必要|咨询师|来访者|转介|倾向的|哪几类|分类|"
    r"谣言|网上说|真的假的|病人的?家属|常备|想备|备一支|手环(?!\S{0,2}(?:显示|测|提示))|推荐|最多(?:能|可以)?吃|一天(?:能|可以)?吃几|评分|规培|考核|怎么计算|什么意思|哪个更|对吗|怎么解释|检查都正常|都正常|后来再没|没再犯|再没犯|"
    r"哪天|能考|多大(?:学|可以|能|年龄|岁数)|提前(?:问|了解|准备)|以后(?:也(?!用不|不需要|不用|不会)|会|怀孕|万一)|剧本|(?<![玩打])游戏(?!直播|主播|厅|机)|吃鸡|王者荣耀|复习|考证|消防证|听说|过的人|的人(?:救|能|可以|应该|会)|排除|家族史|筛查|"
    r"现实(?:中|里|生活中)|剧情|剧本杀|动画|动漫|纪录片|韩剧|美剧|日剧|综艺|短剧|女主(?![人任管])|男主(?![人任管])|作文|(?:看|读)(?:书|文章|报道)\S{0,2}说|书(?:上|里)说|"
    r"(?:是|会是)(?:什么|啥)感觉|咋解释|就是问问|随便问问|安宁疗护|临终关怀|(?:挂号|预约|客服)(?:的)?电话|"
    r"养生(?:节目|视频|文章|讲座|公众号)|(?:看|听)了(?:个|一个|一期|几期)\S{0,4}节目|"
    r"模拟|几种|演\S{0,8}的样子|有什么不一样|有啥不一样|不一样吗|什么不同|就好了|的时候(?:要|该|能|应该)|好奇|分辨|免得|以免|才不会|(?:怎么|点样|如何)(?:放|存放|收纳|保管|弃置|丢弃|扔|处理掉)|(?:怎么|点样|如何)(?:才|先)?(?:能)?安全|放在哪|放哪里|想知道|预案"
    r"|宠物(?!\S{0,3}(?:咬|抓|挠))|猫咪|狗狗|鹦鹉|仓鼠|老狗|鱼缸|金鱼|(?:家|的)狗(?:被|又|突然)"
    r"|(?:摔|掉|砸)(?:下来|下去|坏|碎|了)?的是\S{0,3}(?:手机|电脑|平板|杯子|碗|眼镜|手表|相机|屏幕|东西)"
    r"|(?:能不能|能否|可以|可不可以)(?:一起)?混(?:用|合|着用)|混(?:用|合)吗"
    r"|\bcourses?\b|\btraining\b|\bclass(?:es)?\b|\bfirst aid\b|\bexam\b|\bnovel\b|\bstory\b|\bcharacter\b"
    r"|\bmovie\b|\bdiffer\w*|\bon tv\b|\bwatching\b|\bepisode\b|\bseries\b|"
    r"\brefill\w*|\bprescription\b|\bthesis\b|\bpublish\w*|\bmain character\b|\bthriller\b|\bwriting (?:a|my)\b|"
    r"\bpets?\b|(?<!care of )(?<!after )\bmy (?:cat|dog|parrot)\b|\blyrics?\b|\bsong\b)" + _A_SETTING
)
# An old complaint someone wants an appointment or medicine for ("老毛病了，咋挂号"), unless it has changed: no
# opinion for the learnt model (the signs still read the message).
ROUTINE = re.compile(
    r"^(?!.*(?:这次|这回|又|突然|加重|越来越|不一样))(?=.*(?:老毛病|老问题|老病号))"
    r"(?=.*(?:挂|预约|开\S{0,2}药|续开|复查|出诊|专家))"
)
# not after a word of pain, of swelling or of being bullied ("肿得喘不上气", "被欺负得想死" are meant)
_NOT_HURT = r"(?<![疼痛喘烧吐晕憋咳血受闷慌胀肿])(?<!欺负)(?<!霸凌)"
FIGURATIVE = re.compile(
    r"(?:累|笑|热|冷|烦|气|饿|困|忙|吵|急|无聊|丑|贵|卡|慢|等|排队|堵|尴尬|吓|馋)(?:得)?(?:要)?死(?:了|我|人)|"
    r"(?:排队|等(?:号|了|得)|热|累|攰|困|饿|无聊|吵|忙|作业|加班|上班)\S{0,6}想死|"
    r"(?:作业|加班|上班|工作|考试|复习|排队|控糖|减肥|丑|胖)\S{0,6}(?:到|得)(?:我|人)?(?:都)?(?:快|要)?不想活|"
    + _NOT_HURT
    + r"(?:到|得)(?:我|人)?(?:都)?(?:快|要)(?:中暑)?(?:晕倒|晕过去|昏过去|昏倒)|"
    + _NOT_HURT
    + r"(?:到|得)(?:我|人)?(?:都)?(?:快|要)?想?"
    r"(?:中暑)?(?:昏迷|中风|脑梗|心梗|心脏骤停|心口疼|心肌梗塞?|窒息|吐血|休克|脑溢血|脑出血|崩溃|想死|跳楼|跳河|撞墙|喘不(?:过|上)气?)|"
    r"(?:气|吵|烦|急)(?:得|到)(?:我|她|他|人)?(?:都)?(?:快|要)?想?(?:从\S{0,4})?跳下去|吓(?:出|得|到)\S{0,3}(?:一身)?冷汗|"
    r"(?:钱|费|价|账单|工资|账|花销|医药费)\S{0,8}(?:大出血|吐血|心梗|心肌梗|晕倒|休克|窒息|心脏停|心跳停)|简直是大出血|要吐血了|气(?:得)?晕|"
    r"(?:让|把)(?:我|人)?\S{0,2}吐血|(?:卡|气|烦|急|堵)得我\S{0,2}(?:脑梗|心梗|中风|吐血|窒息)|贵到\S{0,4}(?:吐血|晕|窒息)|"
    r"气得我|让(?:我|人)窒息|窒息(?:感)?的(?:服务|系统|操作|态度)|心梗了?(?:一样|似的)|要被\S{0,4}逼疯|"
    r"(?:价格|排队|服务|系统)\S{0,8}(?:中毒|窒息|心梗)|让(?:人|我)\S{0,2}(?:心梗|脑梗|窒息|吐血|中风|崩溃)|的心都有|饿晕|饿得\S{0,2}晕|夸晕|吓得\S{0,4}(?:晕|死|昏)|"
    r"把我气出|(?:加班|上班|老板|工作|作业|考试)\S{0,10}(?:窒息|心梗|脑梗|猝死|崩溃)|"
    r"要中毒了|笑到|要吐血|气\S{0,2}吐血|缺氧|嚷嚷|夸张|(?:人挤人|排队|电梯|地铁|社恐|人多)\S{0,10}(?:窒息|憋死)|差点(?:被)?(?:挤|憋)死了?(?:哈|😂|🤣)|(?:辣|笑|累|热|挤|憋屈)到(?:我)?喘不过|"
    r"(?:打呼噜|打鼾|打呼|鼾声)\S{0,6}(?:像|跟)\S{0,3}(?:憋死|窒息|断气)|心(?:脏|跳)?都(?:快)?要(?:停|跳出来)了|"
    r"辣(?:得|到)\S{0,6}(?:着火|冒火|喷火|冒烟)|饿(?:得|到)\S{0,4}(?:冒金星|眼花)|昏了头|"
    r"(?:吓|气)(?:得|到)(?:我|人)?\S{0,2}(?:心口|胸口|心脏)\S{0,2}(?:疼|痛)|(?:吵|气)(?:得|到)(?:我|人)?气?都?喘不(?:过|上)"
    r"|(?:心碎|塌房|失恋)\S{0,6}(?:窒息|喘不过气)(?![^。？！?!，,]{0,8}(?:想死|不想活|自杀|跳|吞|割))"
    r"|\blaugh\w*\b.{0,20}\b(?:till|until|so hard)\b|\bfrom laughing\b"
)
# One past episode told as a story ("之前在工地有次突然眼前发黑"), before the words of the moment in its clause, unless
# the message says it is back ("现在又来了")
ONCE = re.compile(
    r"^(?!.*(?:又|这次|这回|再次|今天|刚才|刚刚)).*?"
    r"(?:之前|以前|从前|那时候?|去年|前年|小时候|上个?月|上周|上个?礼拜|那年|当年)\S{0,8}有(?:一)?(?:次|回)"
)
NOW = re.compile(
    r"正在|现在在(?=打|发|抽|吐|喘|流|冒|出)|刚刚|刚才|突然|马上|这次\S{0,6}不一样|(?:跟|和)(?:以前|平时|往常)\S{0,4}不一样|赶紧|快(?:点|来|救)|救命|救救|怎么办|咋办|不行了|还在|一直在(?!(?:你们|我们|这|那|医院|门诊)\S{0,3}(?:看|治|复查|随访)|吃药)|这会儿?|此刻|眼看|现在又|今晚就(?!\S?(?:有点|有些|一点))"
    r"|\bthis (?:is|time is|feels) different\b|\bsince (?:last night|yesterday|this morning)\b"
)
SEVERE = re.compile(
    r"要死|要命|快不行|剧烈|剧痛|厉害|受不了|冷汗|大汗|出汗|发紫|发青|(?<!容易)(?<!容易头)晕|(?<!有点)(?<!有些)喘不|打滚|撕裂|压着|石头|很多|好多|一大"
)
_AN_OLDER_DATE = (
    r"(?:上个?月|去年|前年|上周|上个?(?:礼拜|星期)|(?:几|[一二两三四五六七八九十]|\d+)(?:年|个月|周|个?星期|个?礼拜)前"
    r"|\blast (?:week|month|year|summer|winter|spring|autumn|fall)\b|\b(?:weeks?|months?|years?) ago\b"
    r"|\bon (?:january|february|march|april|may|june|july|august|september|october|november|december) \d)"
)
_A_DATE = r"(?:" + _AN_OLDER_DATE + r"|昨天|昨晚|前天|前晚|琴晚|寻晚|琴日|寻日|\blast night\b|\byesterday\b)"
_OVER = (
    r"(?:(?:已经|都|现在|早就?|治|全|也)好了|好多了|(?:已经|都|现在)没事|(?<!说)(?<!话)没事了"
    r"|出院(?!小结|证明|纸|记录|证|手续|带|时|才|后)|(?<!说)回(?:到)?家了|返(?:咗)?屋企|稳定(?:了|下来)"
    r"|康复|恢复(?:得|了)|撤机|止住了|抢救过|(?:抢救|救)(?:回来|过来)了|一切正常|醒了"
    r"|\bdischarged\b|\bnothing since\b"
    r"|(?<!says he is )(?<!says she is )"
    r"(?:\bfine now\b|\b(?:doing|totally|completely|perfectly) (?:fine|well|ok)\b))(?!\S{0,2}[吗么])"
)
_PAPERWORK = (
    r"(?:发票|报销|医保|罚单|申诉|证明|投诉|表扬|感谢信|锦旗|病历|复印|失物|钱包|作证|律师|开庭|出庭|案子|理赔|赔偿|押金|退费|退款|收费|单据|费用|账单"
    r"|\binvoice\b|\bbill\b|\binsur\w+|\bclaim\b|\breceipt\b|\bform\b)"
)
# Words of this moment, which keep a story told as over from being cut out ("上个月出院了…今天又晕倒了")
THIS_MOMENT = re.compile(
    r"又|这次|这回|再次|今天(?!\S{0,2}(?:想问|来问|问|来复查|复查|挂号|来开|开|打印|办|拿))|今早|今晚|刚才|刚刚|啱啱|还在|正在|仍然|仍在|还是(?=\S{0,2}(?:痛|疼|不|没|喘|晕|吐|抽|流|很|一样|那样))|越来越"
    r"|现在(?!\S{0,3}(?:已经|都|也|在)?(?:好|没事|冇事|正常|稳定|康复|恢复|能|想|住|等|就等|回家|回到家|出院|一切|完全|不痛|不疼|没有?任何))"
    r"|而家(?!\S{0,3}(?:已经|都)?(?:好|冇事|没事|正常))|\b(?:again|still|today|right now|just now|this morning)\b"
    r"|\bnow\b(?<!\bfine now)(?<!\bwell now)(?<!\bok now)(?<!\bhome now)"
    r"(?! (?:fine|ok|okay|well|doing|recovered|stable|home|back|at home|totally|completely)\b)"
    r"|开始|(?:昨晚|昨天|前天)起|\bsince\b|等\S{0,2}(?:救护车|120)"
)
# Passages that tell of no emergency now, cut out before the signs are read; what the message says around them is
# read as ever. An emergency told for its paperwork, after its date up to the first recovery or paperwork
# ("上个月突然昏迷…已经出院了，救护车费能报吗"; the date stays for the clause it ends, as in "a reaction last
# summer"), unless the message has words of this moment.
TOLD_AS_OVER = re.compile(
    r"(" + _AN_OLDER_DATE + r")(?:.*?" + _OVER + r"|.*?" + _PAPERWORK + r")|(" + _A_DATE + r").*?" + _OVER
)
_UNDATED = r"(?:(?!" + _AN_OLDER_DATE + r").)*"
# A story that ended well, from the start of the message (the last ending if several): someone who came round
# afterwards ("有人晕倒，后来没事了"), was brought round, talked down from a ledge, awake or home the next day, blood
# pressure brought down, unless it came back, help is still awaited, or the story is dated before yesterday
# (TOLD_AS_OVER reads those from their date).
ENDED_WELL = re.compile(
    r"^(?!.*(?:又|这次|这回|再次|上次|上回|那次|等\S{0,2}(?:救护车|120)))"
    r"(?:"
    + _UNDATED
    + r"后来(?:就|也|都)?(?:自己)?(?:没事了?|好了)(?![吗吧么嘛]|[^。？！?!]{0,30}(?:又|还是|但|可是|现在|突然))"
    r"|(?!.*(?:刚|现在|还在|正在))" + _UNDATED + r"(?:抢救|救)(?:回来|过来)了"
    r"|" + _UNDATED + r"(?:(?:劝|(?<!耷)拉|救|抱)(?:了)?下来了"
    r"|(?:今天|今早|早上|第二天|已经)(?:已经)?(?:醒(?:过来)?了|回(?:到)?家了)|(?:现在|已经)(?:已经)?出院了"
    r"|血压[^。？！?!]{0,30}降(?:到|至|回)(?:了)?\s?(?:1[0-4]\d|[5-9]\d)(?!\d))"
    r"(?![^。？！?!]{0,20}(?:又|还是|还要|还想|还说|但|可是|突然|结果|一直|现在(?!\S{0,2}(?:没事|好了|好多了|挺好|还好|正常)))))"
)
# A reading taken again and found normal, from the start of the message ("血压计量出来220/130…重新绑好测是128/80"),
# when nothing before it sounds grave and every clause before it is a reading
_A_READING_CLAUSE = (
    r"[^，,。；;\s]*?(?:血压|血糖|血氧|心率|体温|量|测|仪|计|袖带|mmhg|吓|结果|原来|发现|以为|绑|戴|夹)"
    r"[^，,。；;\s]*[，,。；;\s]+"
)
RECHECKED_NORMAL = re.compile(
    r"^(?=(?:(?!叫不|昏|晕|抽|喘|紫|血(?!压|糖|氧)|钾|没反应|呼吸|倒|不省|说不|讲不|歪|麻|胸|剧|汗|痛|疼|吞|吃|喝|服(?:了|下|药)).)*"
    r"(?:重新|再次?|复))(?:"
    + _A_READING_CLAUSE
    + r")*?[^，,。；;\s]*?(?:(?:重新|再次?)(?:绑好|戴好|夹好|量|测)|复(?:测|查))"
    r"(?:\S{0,6}(?:(?<!\d)(?:9[4-9]|100)(?![\d.])|1[0-3]\d/[5-8]\d)|(?:血糖)?(?:是|为|有|就)?\s?[4-7]\.\d)"
    r"(?![^。？！?!]{0,20}(?:又|但|可是|还是|突然))"
)
# A surgery dated in the past ("去年做过支架"), alone: what comes before it may be of now ("胸口疼得厉害满头大汗，
# 去年做过支架").
DATED_SURGERY = re.compile(
    r"(?:上个?月|去年|前年|上周|上个?(?:礼拜|星期))\S{0,2}(?:做了|做过|做的)\S{0,6}(?:手术|再植|支架|搭桥)"
)
# The signs of a leaflet quoted, up to its advice ("宣传册上写胸痛、大汗淋漓请立即拨打120").
QUOTED_ADVICE = re.compile(
    r"(?:须知|宣传册|宣传单|手册|告示|指南|宣传栏|海报|说明书)\S{0,3}(?:里|上)\S{0,2}(?:说|写)[^。？！?!，,我他她你您]{0,60}?"
    r"(?<!要不要)(?<!是不是要)(?<!该)(?:120|急诊)(?![吗么]|还是)"
)
SPACES = re.compile(r"\s+")
# 我 气 喘 不 上 来 了: characters typed one at a time with spaces between are one clause
LETTER_BY_LETTER = re.compile(r"(?<!\S)[\u4e00-\u9fff](?:\s+[\u4e00-\u9fff](?!\S)){2,}")
# a space ends a clause next to Chinese (typed for a comma), not between English words; 39.5 is one number
CLAUSE = re.compile(r"[，,。！!？?；;、…~]+|\.(?!\d)|(?<=[^\x00-\x7f])\s+|\s+(?=[^\x00-\x7f])|(?=但是|可是)")

INSTRUCTION = {
    "zh_CN": "这可能是急症。请立即拨打 120，或马上到最近医院的急诊科就诊。如情况危急，不要等待在线回复。",
    "en": "This may be an emergency. Call 120 now or go to the nearest emergency department at once. "
    "Do not wait for a reply here.",
}
SELF_HARM_LINE = {
    "zh_CN": "如果你有伤害自己的念头，请立即拨打 120 或到最近医院的急诊科；也可以拨打心理援助热线 12356。你并不孤单。",
    "en": "If you are thinking of harming yourself, call 120 or go to the nearest emergency department now; "
    "the mental-health helpline 12356 is there too. You are not alone.",
}


# Something told from long ago with nothing of this moment ("师傅说当年被钢筋扎穿手，现在阴天会疼"): no opinion for the
# learnt model (the signs still read the message).
LONG_AGO = re.compile(r"^(?!.*(?:又|这次|这回|今天|刚|突然|正在|马上|救命)).*?(?:当年|年轻(?:的)?时候?|小时候)")


@dataclass(frozen=True, slots=True)
class Alarm:
    """An emergency found in a message: which kind and the words that raised it."""

    category: str
    phrase: str

    def instruction(self, language: str = "zh_CN") -> str:
        general, self_harm = (lines.get(language, lines["zh_CN"]) for lines in (INSTRUCTION, SELF_HARM_LINE))
        if self.category == LEARNT:  # no sign says which kind: both instructions
            return f"{general} {self_harm}"
        return self_harm if self.category == "self_harm" else general


@dataclass(frozen=True, slots=True)
class _Message:
    """What the whole message says about time and purpose, which a sign's own clause may not repeat."""

    about_a_topic: bool
    chronic: bool
    joking: bool
    reassured: bool
    admitted: bool  # a hypothetical the message says was done (ADMITTED)
    once: bool  # one past episode and nothing back now (ONCE)


@dataclass(frozen=True)
class Guard:
    """Nothing when the message is SETTLED; else the signs first and, when none holds, the learnt second opinion
    (`model`): complement naive Bayes over the phrase sets, raising the alarm when it leans to "emergency" by more
    than MODEL_MARGIN and nothing in the message sets it aside (`_not_now`), or by more than STRONG_MODEL_MARGIN.
    Both read the message without the passages that tell of no emergency now (`_still_open`)."""

    model: ComplementBayes | None

    def alarm(self, text: str) -> Alarm | None:
        folded = LETTER_BY_LETTER.sub(lambda run: SPACES.sub("", run.group(0)), fold(text))
        if SETTLED.search(folded):
            return None
        still_open = _still_open(folded)
        found = _signs_in(still_open)
        if found is not None or self.model is None:
            return found
        likelihoods = self.model.log_likelihoods(still_open)
        if not likelihoods:
            return None
        margin = likelihoods[EMERGENCY] - likelihoods[CALM]
        if margin > STRONG_MODEL_MARGIN or (margin > MODEL_MARGIN and not _not_now(folded)):
            return Alarm(LEARNT, "")
        return None


@lru_cache(maxsize=1)
def default_guard() -> Guard:
    return Guard(ComplementBayes.load(MODEL_FILE, labels=LABELS))


def emergency_in(text: str) -> Alarm | None:
    """An emergency happening now in `text` (the first sign, or the learnt opinion), or None."""
    return default_guard().alarm(text)


def _not_now(folded: str) -> bool:
    """What vetoes a learnt opinion below STRONG_MODEL_MARGIN (SETTLED, read first, vetoes every opinion): the
    message is about a topic, a joke, a figure of speech, an old complaint to book for, something long ago, or
    says all is well."""
    return any(pattern.search(folded) for pattern in (TOPIC, REASSURED, JOKING, ROUTINE, FIGURATIVE, LONG_AGO))


def by_signs(folded: str) -> Alarm | None:
    """The first sign of an emergency happening now in the folded text, or None."""
    return None if SETTLED.search(folded) else _signs_in(_still_open(folded))


def _signs_in(folded: str) -> Alarm | None:
    """The first sign in a message that is not SETTLED, with its passages of no emergency already cut out."""
    joking = bool(JOKING.search(folded)) and not NOT_JOKING.search(folded)
    message = _Message(
        bool(TOPIC.search(folded)),
        bool(CHRONIC.search(folded)),
        joking,
        bool(REASSURED.search(folded)),
        bool(ADMITTED.search(folded)),
        bool(ONCE.search(folded)),
    )
    for clause in CLAUSE.split(folded):
        if clause and (alarm := _alarm_in(clause, message, whole=False)):
            return alarm
    return _alarm_in(SPACES.sub("，", folded), message, whole=True)


def _still_open(folded: str) -> str:
    """The message without the passages that tell of no emergency now (TOLD_AS_OVER, ENDED_WELL, RECHECKED_NORMAL,
    DATED_SURGERY, QUOTED_ADVICE)."""
    if not THIS_MOMENT.search(folded):
        folded = TOLD_AS_OVER.sub(lambda story: (story.group(1) or story.group(2)) + "，", folded, count=1)
    folded = RECHECKED_NORMAL.sub("，", ENDED_WELL.sub("，", folded, count=1), count=1)
    return QUOTED_ADVICE.sub("，", DATED_SURGERY.sub("，", folded))


def _alarm_in(clause: str, message: _Message, *, whole: bool) -> Alarm | None:
    if FIGURATIVE.search(clause):
        return None
    for sign in SIGNS:
        if sign.whole != whole:
            continue
        for match in sign.pattern.finditer(clause):
            if not _set_aside(clause, match, sign, message):
                return Alarm(sign.category, match.group(0))
    return None


def _set_aside(clause: str, match: re.Match[str], sign: Sign, message: _Message) -> bool:
    """Whether the message shows the sign is not about an emergency now (see the module's docstring)."""
    if NEGATION.search(clause[max(0, match.start() - NEGATION_REACH) : match.start()]):
        return True
    worry = WORRY.search(clause)
    if worry and sign.grave and not sign.whole and worry.start() >= match.end():
        worry = None  # a worry after a grave sign asks what it means ("人叫不醒会不会是中毒"), not whether it may come
    if TOPIC.search(clause) or (worry and not message.admitted):
        return True
    if message.once and ONCE.search(clause):
        return True
    if NOW.search(clause):
        return False
    if PAST.search(clause) or (not sign.whole and CHRONIC.search(clause)):
        return True
    if sign.grave or SEVERE.search(clause):
        return False
    return (
        message.about_a_topic
        or message.chronic
        or message.joking
        or message.reassured
        or bool(MILD.search(clause) or INFORMATION.search(clause))
    )
